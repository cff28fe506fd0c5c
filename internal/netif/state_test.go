package netif

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6edge/v6edge/internal/statefile"
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
		wants, err := parseOwned(strings.NewReader(data))
		if err != nil {
			return
		}
		owned := toOwned(wants)
		for _, w := range wants {
			if validIfname(w.Interface) != nil || !w.Prefix.IsValid() || !w.Prefix.Addr().Is6() {
				t.Fatalf("accepted %+v", w)
			}
		}
		text := formatOwned(owned)
		again, err := parseOwned(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := formatOwned(toOwned(again)); got != text {
			t.Fatalf("round trip changed %q to %q", text, got)
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

func TestLoadOwnedReadsWhatWasWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), ownedFile)
	owned := map[key]netip.Prefix{
		{"lan0", lanAddr.Addr()}:                 lanAddr,
		{"lan1", netip.MustParseAddr("fd00::1")}: netip.MustParsePrefix("fd00::1/64"),
	}
	if err := statefile.Write(path, []byte(formatOwned(owned)), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := loadOwned(path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(owned, toOwned(got), cmpOpts, cmp.AllowUnexported(key{})); diff != "" {
		t.Errorf("loaded (-want +got):\n%s", diff)
	}
}
