// Package packaging_test checks that the Debian package `make deb` builds
// holds what an operator needs, installs into a root, is lintian clean, and
// that the unit's restrictions let the daemon do what its config asks.
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
	bin := v6edgeBinary(t)
	mk := exec.Command("./mkdeb.sh")
	mk.Env = append(os.Environ(), "BIN="+bin, "OUT="+tmp, "VERSION=1.2.3+git4.0a1b2c3d4e5f")
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
		"./usr/share/doc/v6edge/changelog.gz", "./usr/share/doc/v6edge/copyright",
	} {
		if !strings.Contains(string(contents), want) {
			t.Errorf("package lacks %s:\n%s", want, contents)
		}
	}
	field := func(name string) string {
		out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	if v := field("Version"); v != "1.2.3+git4.0a1b2c3d4e5f" {
		t.Errorf("Version %q", v)
	}
	// The daemon speaks netlink; nft is for the operator, not a dependency.
	if d := field("Depends"); strings.Contains(d, "nftables") {
		t.Errorf("Depends: %s; nftables belongs in Recommends", d)
	}
	if r := field("Recommends"); !strings.Contains(r, "nftables") {
		t.Errorf("Recommends: %q lacks nftables", r)
	}
	ctrl := filepath.Join(tmp, "control")
	if out, err := exec.Command("dpkg-deb", "--control", deb, ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		text, err := os.ReadFile(filepath.Join(ctrl, s))
		if err != nil {
			t.Errorf("no %s: %v", s, err)
			continue
		}
		if s != "prerm" && !strings.Contains(string(text), "daemon-reload") {
			t.Errorf("%s does not reload systemd:\n%s", s, text)
		}
		// Enabling (and starting) the router is the administrator's choice.
		for _, l := range strings.Split(string(text), "\n") {
			if l = strings.TrimSpace(l); !strings.HasPrefix(l, "#") && (strings.Contains(l, "enable") || strings.Contains(l, " start")) {
				t.Errorf("%s enables or starts the service: %s", s, l)
			}
		}
	}

	if _, err := exec.LookPath("lintian"); err != nil {
		t.Log("lintian not installed (make deps installs it): package not linted")
	} else {
		// A Go daemon is static by design; nothing else may be reported.
		out, err := exec.Command("lintian", "--fail-on", "error,warning", "--suppress-tags", "statically-linked-binary", deb).CombinedOutput()
		if err != nil || strings.Contains(string(out), "E: ") || strings.Contains(string(out), "W: ") {
			t.Errorf("lintian: %v\n%s", err, out)
		}
	}

	// Install into a throwaway root with its own dpkg database; the
	// maintainer scripts act on it through DPKG_ROOT, never on this machine.
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
	dpkg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %v into a throwaway root: %v\n%s", args, err, out)
		}
	}
	dpkg("-i", deb)
	installed := filepath.Join(root, "usr/sbin/v6edge")
	if out, err := exec.Command(installed, "check", filepath.Join(root, "etc/v6edge/v6edge.toml")).CombinedOutput(); err != nil {
		t.Errorf("the installed binary rejects the installed config: %v\n%s", err, out)
	}
	if out, err := exec.Command(installed, "version").Output(); err != nil || !strings.Contains(string(out), "1.2.3") {
		t.Errorf("v6edge version: %v %q", err, out)
	}
	// What the daemon leaves in its state directory goes on purge, not on remove.
	state := filepath.Join(root, "var/lib/v6edge")
	if err := os.MkdirAll(state, 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(state, "lease.json"), []byte("{}"), 0o640)
	dpkg("--remove", "v6edge")
	if _, err := os.Stat(state); err != nil {
		t.Errorf("remove took the state directory: %v", err)
	}
	if _, err := os.Stat(installed); err == nil {
		t.Error("remove left the binary")
	}
	dpkg("--purge", "v6edge")
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("purge left %s: %v", state, err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/v6edge/v6edge.toml")); !os.IsNotExist(err) {
		t.Errorf("purge left the conffile: %v", err)
	}
}
