package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionScheme runs packaging/version.sh over a repository's history:
// untagged commits, tags, commits between tags. Every version must be a
// Debian version and sort after the one before it.
func TestVersionScheme(t *testing.T) {
	for _, tool := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	script, err := filepath.Abs("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.org",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.org", "GIT_CONFIG_GLOBAL=/dev/null")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command(script, repo).CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func() {
		git("commit", "-q", "--allow-empty", "-m", "c")
	}
	git("init", "-q")
	if v := version(); v != "0.0.0" {
		t.Errorf("no commit: %q", v)
	}
	steps := []struct {
		do   func()
		want string // a regexp
	}{
		{commit, `^0\.0\.0\+git1\.[0-9a-f]{12}$`},
		{commit, `^0\.0\.0\+git2\.[0-9a-f]{12}$`},
		{commit, `^0\.0\.0\+git3\.[0-9a-f]{12}$`},
		{func() { git("tag", "v0.1.0") }, `^0\.1\.0$`},
		{commit, `^0\.1\.0\+git1\.[0-9a-f]{12}$`},
		{commit, `^0\.1\.0\+git2\.[0-9a-f]{12}$`},
		{func() { git("tag", "0.1.1") }, `^0\.1\.1$`},
		{commit, `^0\.1\.1\+git1\.[0-9a-f]{12}$`},
		{func() { git("tag", "v1.0.0") }, `^1\.0\.0$`},
		{func() { os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644); git("add", "f") }, `^1\.0\.0\+dirty$`},
		{func() { git("commit", "-q", "-m", "f") }, `^1\.0\.0\+git1\.[0-9a-f]{12}$`},
		{func() { os.WriteFile(filepath.Join(repo, "f"), []byte("y"), 0o644) }, `^1\.0\.0\+git1\.[0-9a-f]{12}\.dirty$`},
		{func() { git("commit", "-q", "-am", "g") }, `^1\.0\.0\+git2\.[0-9a-f]{12}$`},
		{func() { git("tag", "v1.0.1") }, `^1\.0\.1$`},
	}
	prev := "0.0.0"
	for i, s := range steps {
		s.do()
		v := version()
		if !regexp.MustCompile(s.want).MatchString(v) {
			t.Errorf("step %d: version %q, want %s", i, v, s.want)
		}
		if out, err := exec.Command("dpkg", "--validate-version", v).CombinedOutput(); err != nil {
			t.Errorf("step %d: %q is not a Debian version: %s", i, v, out)
		}
		if err := exec.Command("dpkg", "--compare-versions", prev, "lt", v).Run(); err != nil {
			t.Errorf("step %d: %q does not sort after %q", i, v, prev)
		}
		prev = v
	}
	// The checkout this runs in, tagged or not, gets a valid version too.
	out, err := exec.Command(script).CombinedOutput()
	if err != nil || exec.Command("dpkg", "--validate-version", strings.TrimSpace(string(out))).Run() != nil {
		t.Errorf("this checkout: %v %q", err, out)
	}
}
