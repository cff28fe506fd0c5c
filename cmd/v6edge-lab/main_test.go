package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLine: usage, flags and the checks made before any lab is
// built (neither needs root).
func TestCommandLine(t *testing.T) {
	demo := filepath.Join("..", "..", defaultConfig)
	dir := t.TempDir()
	exe := filepath.Join(dir, "v6edge")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[wan]\ninterface = \"wan0\"\nbogus = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		args         []string
		code         int
		stdout, errs string
	}{
		{"-h prints the usage on stdout", []string{"-h"}, 0, "usage: v6edge-lab", ""},
		{"demo -h prints the usage on stdout", []string{"demo", "-h"}, 0, "-v6edge PATH", ""},
		{"bench -h prints the usage on stdout", []string{"bench", "-h"}, 0, "-runs N", ""},
		{"no command is a usage error", nil, 2, "", "usage: v6edge-lab"},
		{"an unknown command is a usage error", []string{"frobnicate"}, 2, "", "unknown command"},
		{"demo takes no -runs", []string{"demo", "-runs", "3"}, 2, "", "-runs"},
		{"a missing binary is named", []string{"demo", "-v6edge", filepath.Join(dir, "none"), "-config", demo}, 1, "", "no v6edge binary at " + filepath.Join(dir, "none")},
		{"a missing config is named", []string{"demo", "-v6edge", exe, "-config", filepath.Join(dir, "none.toml")}, 1, "", "none.toml"},
		{"an invalid config is refused before the lab", []string{"bench", "-v6edge", exe, "-config", bad}, 1, "", "wan.bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tc.code, out.String(), errb.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.errs) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.errs)
			}
		})
	}
}

// TestDaemonReadsTheDemoConfig: the config is the file's text as it is,
// and a relative binary path becomes absolute (the lab runs it from other
// namespaces).
func TestDaemonReadsTheDemoConfig(t *testing.T) {
	demo, err := filepath.Abs(filepath.Join("..", "..", defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(demo)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "v6edge"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	v, err := daemon("./v6edge", demo)
	if err != nil {
		t.Fatal(err)
	}
	if v.Bin != filepath.Join(dir, "v6edge") {
		t.Errorf("Bin = %q, want %q", v.Bin, filepath.Join(dir, "v6edge"))
	}
	if v.Config != string(want) {
		t.Errorf("Config is not the text of %s:\n%s", demo, v.Config)
	}
}
