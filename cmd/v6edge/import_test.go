package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v6edge/v6edge/configs"
)

func TestImportCommand(t *testing.T) {
	td := func(name string) string { return filepath.Join("..", "..", "internal", "migrate", "testdata", name) }
	dir := t.TempDir()
	out := filepath.Join(dir, "v6edge.toml")
	extra := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(extra, []byte("interface lan0 {\n\tAdvSendAdvert on;\n\tUnicastOnly on;\n\tprefix fd00:aaaa:bbbb:cc01::/64 { };\n};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	incumbent := []string{"import", "-dhcpcd", td("incumbent-dhcpcd.conf"), "-hook", td("incumbent-hook.sh"), "-keepalived", ""}
	for _, tc := range []struct {
		name      string
		args      []string
		code      int
		stdout    string // in stdout
		stderr    string // in stderr
		writesOut bool
	}{
		{"the lab's incumbent imports completely: exit 0", append(incumbent, "-radvd", td("incumbent-radvd.conf")), 0, `internal_prefix = "fd00:aaaa:bbbb:cc00::/56"`, "", false},
		{"-o writes the file instead of stdout", append(incumbent, "-radvd", td("incumbent-radvd.conf"), "-o", out), 0, "", "", true},
		{"a line left out is exit 1, on stderr and in the config", append(incumbent, "-radvd", extra), 1, "# not imported: UnicastOnly on (radvd.conf:3)", "not imported: UnicastOnly on (radvd.conf:3)", false},
		{"the seed's fc::/58 fails validation: exit 2 with the reason", []string{"import", "-dhcpcd", td("seed-dhcpcd.conf"), "-hook", td("seed-dhcpcd-pd-script"), "-radvd", extra, "-keepalived", ""}, 2, "", "nat.internal_prefix: must be a unique local prefix", false},
		{"a file given that does not exist is exit 2", append(incumbent, "-radvd", filepath.Join(dir, "nope")), 2, "", "no such file", false},
		{"a radvd.conf that does not parse is exit 2 with its line", append(incumbent, "-radvd", td("incumbent-dhcpcd.conf")), 2, "", "incumbent-dhcpcd.conf:2: expected interface", false},
		{"-keep-keepalived prints the notify lines", []string{"import", "-dhcpcd", td("pairinc-dhcpcd.conf"), "-hook", td("pairinc-dhcpcd-hook.sh"), "-radvd", td("pairinc-radvd.conf"), "-keepalived", td("pairinc-keepalived.conf"), "-keep-keepalived"}, 1, `mode = "external"`, " ha master\"", false},
		{"an argument is a usage error", []string{"import", "extra"}, 2, "", "unexpected argument", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(out)
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stdout lacks %q or stderr lacks %q\nstdout:\n%s\nstderr:\n%s", tc.stdout, tc.stderr, stdout.String(), stderr.String())
			}
			if code < 2 && !tc.writesOut {
				if _, err := configs.Parse("stdout", stdout.Bytes()); err != nil {
					t.Errorf("stdout does not parse: %v", err)
				}
			}
			if tc.writesOut {
				if _, err := configs.Load(out); err != nil || stdout.Len() != 0 {
					t.Errorf("-o: %v, stdout %q", err, stdout.String())
				}
			}
		})
	}
}
