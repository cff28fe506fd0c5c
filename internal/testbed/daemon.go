package testbed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// V6edge is the daemon a demo or bench runs: the v6edge binary and the
// config text it runs with (configs/examples/demo.toml, read by the caller;
// RunDaemon replaces its [control] table with the lab's paths).
type V6edge struct {
	Bin    string
	Config string
}

// Daemon is a v6edge daemon running in the router namespace.
type Daemon struct {
	*Proc
	Bin      string // the v6edge binary
	Socket   string // its control socket, in the lab directory
	Config   string // its config file, in the lab directory
	StateDir string
	NS       string // the router namespace it runs in

	lab *Lab
}

// RunDaemon writes configTOML to the lab directory, with its [control]
// table replaced so that the socket and state_dir live in the lab directory
// too, and runs `bin run -config ...` in the router namespace. Every call
// gets fresh paths, so a second daemon starts without the first one's lease.
func (l *Lab) RunDaemon(ctx context.Context, bin, configTOML string) (*Daemon, error) {
	return l.RunDaemonOn(ctx, l.Router, bin, configTOML)
}

// RunDaemonOn is RunDaemon in the router namespace router (one of
// l.Routers), for HA pairs.
func (l *Lab) RunDaemonOn(ctx context.Context, router, bin, configTOML string) (*Daemon, error) {
	name := fmt.Sprintf("v6edge-%d", l.next())
	d, err := l.newDaemon(router, bin, name)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.Config, []byte(WithControl(configTOML, d.Socket, d.StateDir)), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	p, err := l.Start(ctx, router, name, bin, "run", "-config", d.Config, "-log-level", "debug")
	if err != nil {
		return nil, err
	}
	d.Proc = p
	return d, nil
}

// newDaemon returns a Daemon, not started, to run bin in the namespace
// router with its socket, config and (created) state_dir named after name
// in the lab directory.
func (l *Lab) newDaemon(router, bin, name string) (*Daemon, error) {
	d := &Daemon{
		Bin:      bin,
		Socket:   l.path(name + ".sock"),
		Config:   l.path(name + ".toml"),
		StateDir: l.path(name + "-state"),
		NS:       router,
		lab:      l,
	}
	if err := os.MkdirAll(d.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	return d, nil
}

var rapidCommitLine = regexp.MustCompile(`(?m)^[ \t]*rapid_commit[ \t]*=.*$`)
var wanHeader = regexp.MustCompile(`(?m)^[ \t]*\[\[?[ \t]*wan[ \t]*\]\]?.*$`)

// WithRapidCommit returns the config text with wan.rapid_commit set to on:
// an existing rapid_commit line is rewritten, otherwise one is added under
// the first [wan] table.
func WithRapidCommit(config string, on bool) string {
	line := fmt.Sprintf("rapid_commit = %v", on)
	if rapidCommitLine.MatchString(config) {
		return rapidCommitLine.ReplaceAllString(config, line)
	}
	if loc := wanHeader.FindStringIndex(config); loc != nil {
		return config[:loc[1]] + "\n" + line + config[loc[1]:]
	}
	return config
}

var tableHeader = regexp.MustCompile(`^\s*\[`)
var controlHeader = regexp.MustCompile(`^\s*\[\s*control\s*\]\s*(#.*)?$`)

// WithControl returns the TOML config text with its [control] table (if any)
// replaced by one that names socket and stateDir. The rest of the text,
// comments included, is unchanged.
func WithControl(config, socket, stateDir string) string {
	var out []string
	skipping := false
	for _, line := range strings.Split(config, "\n") {
		switch {
		case controlHeader.MatchString(line):
			skipping = true
			continue
		case tableHeader.MatchString(line):
			skipping = false
		}
		if !skipping {
			out = append(out, line)
		}
	}
	text := strings.TrimRight(strings.Join(out, "\n"), "\n")
	return fmt.Sprintf("%s\n\n[control]\nsocket = %q\nstate_dir = %q\n", text, socket, stateDir)
}

// Status runs `v6edge status -json` against the daemon's socket in the
// router namespace and returns the parsed document and the exit code (0
// healthy, 1 problems, 2 unreachable). An unreachable daemon is an error.
func (d *Daemon) Status(ctx context.Context) (map[string]any, int, error) {
	out, code, err := d.Ctl(ctx, "status", "-json")
	if err != nil {
		return nil, code, err
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, code, fmt.Errorf("lab: v6edge status (exit %d): %w: %q", code, err, out)
	}
	return doc, code, nil
}

// Ctl runs `v6edge <command> -socket <socket> args...` in the router
// namespace and returns its stdout and exit code. Exit code 2 (the daemon
// cannot be reached) is returned with an error that carries stderr.
func (d *Daemon) Ctl(ctx context.Context, command string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	full := append([]string{"netns", "exec", d.NS, d.Bin, command, "-socket", d.Socket}, args...)
	cmd := exec.CommandContext(ctx, "ip", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		return "", -1, fmt.Errorf("lab: v6edge %s: %w", command, err)
	}
	if code == 2 {
		return stdout.String(), code, fmt.Errorf("lab: v6edge %s: daemon unreachable: %s", command, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), code, nil
}

// WaitStatus polls the daemon's status until cond holds for the document.
func (d *Daemon) WaitStatus(ctx context.Context, timeout time.Duration, what string, cond func(doc map[string]any) bool) (map[string]any, error) {
	var last map[string]any
	err := d.lab.WaitFor(ctx, timeout, what, func() (bool, error) {
		if d.exited() {
			return false, fmt.Errorf("v6edge exited: %s", lastLines(d.Log(), 10))
		}
		doc, _, err := d.Status(ctx)
		if err != nil {
			return false, err
		}
		last = doc
		return cond(doc), nil
	})
	if err != nil {
		b, _ := json.Marshal(last)
		return last, fmt.Errorf("%w; last status: %s", err, b)
	}
	return last, nil
}

// Get walks a status document along a path of keys and list indexes, e.g.
// Get(doc, "wan", "prefix") or Get(doc, "lan", 0, "interface"). It returns
// nil where the path does not exist.
func Get(doc any, path ...any) any {
	cur := doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[k]
		case int:
			s, ok := cur.([]any)
			if !ok || k < 0 || k >= len(s) {
				return nil
			}
			cur = s[k]
		default:
			return nil
		}
	}
	return cur
}

// GetString is Get for a string leaf ("" if absent or not a string).
func GetString(doc any, path ...any) string {
	s, _ := Get(doc, path...).(string)
	return s
}

// WaitLeaseSaved waits until the daemon's state_dir holds a saved lease
// with prefix in it: the daemon tells its parts about a new lease before it
// saves it, so a test that kills the daemon right after status shows the
// lease must wait for the file first.
func (d *Daemon) WaitLeaseSaved(ctx context.Context, prefix netip.Prefix, timeout time.Duration) error {
	return d.lab.WaitFor(ctx, timeout, "the lease for "+prefix.String()+" saved in "+d.StateDir, func() (bool, error) {
		files, err := filepath.Glob(filepath.Join(d.StateDir, "lease-*.json"))
		if err != nil {
			return false, err
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), prefix.String()) {
				return true, nil
			}
		}
		return false, nil
	})
}
