package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// makeVars evaluates Makefile variables without running any target.
func makeVars(t *testing.T, env []string, vars ...string) map[string]string {
	t.Helper()
	var rule strings.Builder
	rule.WriteString("show-vars:\n")
	for _, v := range vars {
		rule.WriteString("\t@echo '" + v + "=$(" + v + ")'\n")
	}
	cmd := exec.Command("make", "-s", "--no-print-directory", "-C", "..", "-f", "Makefile", "-f", "-", "show-vars")
	cmd.Stdin = strings.NewReader(rule.String())
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			got[k] = v
		}
	}
	return got
}

// A fresh Debian (debootstrap minbase + git, make and Go): make deps must
// bring what make test needs, the README must name what it does not.
func TestFreshMachine(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goMin := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if goMin == nil {
		t.Fatal("go.mod has no go line")
	}
	want := string(goMin[1])

	v := makeVars(t, nil, "DEB_PACKAGES", "GO_MIN")
	pkgs := set(strings.Fields(v["DEB_PACKAGES"]))
	for _, p := range []string{"gcc", "libc6-dev", "lintian"} {
		if !pkgs[p] {
			t.Errorf("DEB_PACKAGES lacks %s: %s", p, v["DEB_PACKAGES"])
		}
	}
	if v["GO_MIN"] != want {
		t.Errorf("GO_MIN %q, go.mod says %q", v["GO_MIN"], want)
	}
	// Go is found at /usr/local/go when it is not on PATH, and the tests
	// make runs find the same one.
	v = makeVars(t, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, "GO", "PATH")
	if _, err := exec.LookPath("go"); err == nil && !strings.HasPrefix(v["GO"], "/") {
		t.Errorf("GO %q is not a path", v["GO"])
	}
	if _, err := os.Stat("/usr/bin/go"); os.IsNotExist(err) {
		if v["GO"] != "/usr/local/go/bin/go" || !strings.HasPrefix(v["PATH"], "/usr/local/go/bin/") {
			t.Errorf("without go on PATH: GO %q, PATH %q; want /usr/local/go/bin/go first", v["GO"], v["PATH"])
		}
	}
	// A Go older than go.mod's is named, before anything is installed.
	old := filepath.Join(t.TempDir(), "go")
	os.WriteFile(old, []byte("#!/bin/sh\necho go1.20.1\n"), 0o755)
	out, err := exec.Command("make", "-s", "-C", "..", "deps", "GO="+old).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "needs "+want+" or newer") {
		t.Errorf("make deps with Go 1.20.1: %v\n%s", err, out)
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	quick := string(readme)
	if i := strings.Index(quick, "## Quick start"); i >= 0 {
		quick = quick[i:]
		if j := strings.Index(quick[3:], "\n## "); j >= 0 {
			quick = quick[:j+3]
		}
	} else {
		t.Fatal("README has no Quick start")
	}
	if !strings.Contains(quick, "Go ≥ "+want) || !strings.Contains(quick, "/usr/local/go") {
		t.Errorf("README's Quick start does not state the Go prerequisite (Go ≥ %s, PATH or /usr/local/go):\n%s", want, quick)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(quick)
	if block == nil {
		t.Fatal("README's Quick start has no command block")
	}
	var cmds []string
	for _, l := range strings.Split(strings.TrimSpace(block[1]), "\n") {
		cmds = append(cmds, strings.Fields(l)[0]+" "+strings.Fields(l)[1])
	}
	if strings.Join(cmds, "; ") != "make demo; make test" {
		t.Errorf("README's set-up commands are %q, want exactly make demo and make test", cmds)
	}
}
