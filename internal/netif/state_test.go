package netif

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadOwned feeds arbitrary state files to the parser of the list of
// added addresses: it must never panic, and whatever it accepts must
// survive a write and a read unchanged.
func FuzzLoadOwned(f *testing.F) {
	f.Add("lan0 fd00:aaaa:bbbb:cc01::1/64\n")
	f.Add("lan0 fd00::1/64\nwan0 2001:db8::1/128\n")
	f.Add("garbage\n\n lan0  fe80::1/64 \n../x ::/0\n")
	f.Add("lan0 fd00::1/999\n")
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		path := filepath.Join(dir, ownedFile)
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		wants, err := loadOwned(path)
		if err != nil {
			return
		}
		owned := map[key]netip.Prefix{}
		for _, w := range wants {
			if validIfname(w.Interface) != nil || !w.Prefix.IsValid() {
				t.Fatalf("accepted %+v", w)
			}
			owned[key{w.Interface, w.Prefix.Addr()}] = w.Prefix
		}
		text := formatOwned(owned)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := loadOwned(path)
		if err != nil {
			t.Fatal(err)
		}
		if formatOwned(toOwned(again)) != text {
			t.Fatalf("round trip changed %q", text)
		}
	})
}

func toOwned(ws []Want) map[key]netip.Prefix {
	m := map[key]netip.Prefix{}
	for _, w := range ws {
		m[key{w.Interface, w.Prefix.Addr()}] = w.Prefix
	}
	return m
}
