package migrate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/v6edge/v6edge/configs"
)

// Run one target with e.g.
//
//	go test -run '^$' -fuzz '^FuzzParseRadvd$' -fuzztime 60s -fuzzminimizetime 5s ./internal/migrate
//
// The seeds are whole config files of a few KB: without a short
// -fuzzminimizetime the engine spends up to a minute minimizing each new
// interesting input, and its progress line shows 0 execs/sec meanwhile.

// seeds adds every testdata file whose name starts with prefix.
func seeds(f *testing.F, prefixes ...string) {
	for _, p := range prefixes {
		paths, _ := filepath.Glob(filepath.Join("testdata", p+"*"))
		for _, path := range paths {
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
	}
}

func FuzzParseDhcpcd(f *testing.F) {
	seeds(f, "seed-dhcpcd.conf", "incumbent-dhcpcd", "pairinc-dhcpcd.conf")
	f.Add([]byte("interface wan0\nia_pd 00:11:22:33/::/48 lan0/1/64 lan1/2\nduid 00:03:00:01:02:00:5e:00:01:33\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDhcpcd("f", data)
		if err == nil && d.PrefixLength < 0 {
			t.Fatal("negative prefix length")
		}
	})
}

func FuzzParseHook(f *testing.F) {
	seeds(f, "seed-dhcpcd-pd-script", "incumbent-hook", "pairinc-dhcpcd-hook", "pairinc-notify")
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHook("f", data)
		if err == nil && h.InternalPrefix.IsValid() && h.InternalPrefix.Masked() != h.InternalPrefix {
			t.Fatalf("internal prefix %v has host bits", h.InternalPrefix)
		}
		NotifyMAC(data)
	})
}

func FuzzParseRadvd(f *testing.F) {
	seeds(f, "debian-radvd", "debian-simple-radvd", "incumbent-radvd", "pairinc-radvd")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseRadvd("f", data)
	})
}

func FuzzParseKeepalived(f *testing.F) {
	seeds(f, "debian-keepalived", "pairinc-keepalived")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseKeepalived("f", data)
	})
}

// FuzzImport feeds a fuzzed radvd.conf and keepalived.conf with the lab's
// dhcpcd.conf and hook: Import must not panic, and whatever it renders
// must be TOML configs.Parse reads without panicking.
func FuzzImport(f *testing.F) {
	dh, _ := os.ReadFile("testdata/pairinc-dhcpcd.conf")
	hook, _ := os.ReadFile("testdata/pairinc-dhcpcd-hook.sh")
	radvd, _ := os.ReadFile("testdata/pairinc-radvd.conf")
	ka, _ := os.ReadFile("testdata/pairinc-keepalived.conf")
	f.Add(radvd, ka)
	f.Fuzz(func(t *testing.T, radvd, ka []byte) {
		res, err := Import(Inputs{
			Dhcpcd: &File{"d", dh}, Hook: &File{"h", hook}, Radvd: &File{"r", radvd}, Keepalived: &File{"k", ka},
		})
		if err != nil {
			return
		}
		_, _ = configs.Parse("imported", []byte(res.Render()))
	})
}
