package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[wan]\ninterface = \"wan0\"\n[nat]\ninternal_prefix = \"fd00:1::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n"), 0o644)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[wan]\ninterface = \"wan0\"\nbogus = 1\n[nat]\ninternal_prefix = \"2001:db8::/56\"\n[[lan]]\ninterface = \"lan0\"\nsubnet = 1\n"), 0o644)
	sock := filepath.Join(dir, "none.sock")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"check accepts a valid config", []string{"check", "-config", good}, 0, "ok"},
		{"check names key and line of every error", []string{"check", "-config", bad}, 1, "bad.toml:3: wan.bogus"},
		{"check reports the second error too", []string{"check", "-config", bad}, 1, "nat.internal_prefix"},
		{"status exits 2 when the daemon cannot be reached", []string{"status", "-socket", sock}, 2, "not reachable"},
		{"ha takes the role before the flags", []string{"ha", "master", "-socket", sock}, 2, "not reachable"},
		{"ha takes the role after the flags", []string{"ha", "-socket", sock, "backup"}, 2, "not reachable"},
		{"ha without a role is a usage error", []string{"ha", "-socket", sock}, 2, "usage"},
		{"an unknown command is a usage error", []string{"frobnicate"}, 2, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tc.code, out.String(), errb.String())
			}
			if all := out.String() + errb.String(); !strings.Contains(all, tc.output) {
				t.Errorf("output %q lacks %q", all, tc.output)
			}
		})
	}
}
