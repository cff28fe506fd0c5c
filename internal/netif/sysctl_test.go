package netif

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSysctlPath(t *testing.T) {
	tests := []struct {
		name, ifname, key string
		ok                bool
	}{
		{"an interface and a key make a path", "lan0", "accept_ra", true},
		{"all is a valid interface", "all", "forwarding", true},
		{"a dotted VLAN name is valid", "eth0.100", "forwarding", true},
		{"a key cannot climb out", "lan0", "../../../../etc/passwd", false},
		{"an interface cannot climb out", "..", "forwarding", false},
		{"a slash is refused", "a/b", "forwarding", false},
		{"an empty key is refused", "lan0", "", false},
		{"an over-long interface is refused", "abcdefghijklmnop", "forwarding", false},
		{"upper case keys do not exist", "lan0", "Forwarding", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := sysctlPath(tt.ifname, tt.key)
			if (err == nil) != tt.ok {
				t.Fatalf("sysctlPath(%q, %q) = %q, %v; want ok=%v", tt.ifname, tt.key, p, err, tt.ok)
			}
			if tt.ok && p != filepath.Join(confDir, tt.ifname, tt.key) {
				t.Errorf("path = %q", p)
			}
		})
	}
}

func TestProcSysReadsTheKernel(t *testing.T) {
	v, err := ProcSys{}.Get("lo", "mtu")
	if err != nil {
		t.Skipf("no IPv6 on lo here: %v", err)
	}
	if v == "" || strings.Contains(v, "\n") {
		t.Errorf("mtu = %q", v)
	}
}

func TestSetAcceptRARefusesOutOfRange(t *testing.T) {
	if err := SetAcceptRA("lan0", 3); err == nil {
		t.Error("accept_ra=3 accepted")
	}
}

// FuzzSysctlPath checks that whatever names come in (from the config),
// an accepted path stays one interface directory below confDir.
func FuzzSysctlPath(f *testing.F) {
	for _, s := range [][2]string{{"lan0", "forwarding"}, {"..", "x"}, {"a/b", "c"}, {"all", "accept_ra"}, {"eth0.1", "../x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ifname, key string) {
		p, err := sysctlPath(ifname, key)
		if err != nil {
			return
		}
		rel, rerr := filepath.Rel(confDir, p)
		if rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") || strings.Count(rel, "/") != 1 {
			t.Fatalf("sysctlPath(%q, %q) = %q escapes %s", ifname, key, p, confDir)
		}
	})
}
