package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		{"check takes the path positionally", []string{"check", good}, 0, good + ": ok"},
		{"check takes the path positionally after flags", []string{"check", "-config", good, good}, 0, good + ": ok"},
		{"check refuses two different files", []string{"check", "-config", good, bad}, 2, "give one config file"},
		{"check checks the positional path, not the default", []string{"check", bad}, 1, "bad.toml:3: wan.bogus"},
		{"check names key and line of every error", []string{"check", "-config", bad}, 1, "bad.toml:3: wan.bogus"},
		{"check reports the second error too", []string{"check", "-config", bad}, 1, "nat.internal_prefix"},
		{"status exits 2 when the daemon cannot be reached", []string{"status", "-socket", sock}, 2, "not reachable"},
		{"ha takes the role before the flags", []string{"ha", "master", "-socket", sock}, 2, "not reachable"},
		{"ha takes the role after the flags", []string{"ha", "-socket", sock, "backup"}, 2, "not reachable"},
		{"ha without a role is a usage error", []string{"ha", "-socket", sock}, 2, "usage"},
		{"an unknown command is a usage error", []string{"frobnicate"}, 2, "unknown command"},
		{"help on an unknown command is a usage error", []string{"help", "frobnicate"}, 2, "unknown command"},
		{"run rejects an unknown log format", []string{"run", "-log-format", "xml", "-config", good}, 2, "-log-format"},
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

// subcommands are the commands `v6edge help` lists, read from its output.
func subcommands(t *testing.T) []string {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Fatalf("help: exit %d, stderr %q", code, errb.String())
	}
	var cmds []string
	in := false
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case l == "commands:":
			in = true
		case in && strings.HasPrefix(l, "  "):
			cmds = append(cmds, strings.Fields(l)[0])
		case in:
			in = false
		}
	}
	if len(cmds) < 7 {
		t.Fatalf("help lists %v", cmds)
	}
	return cmds
}

// Go CLI conventions: usage asked for goes to stdout with exit 0; usage
// after a mistake goes to stderr with exit 2.
func TestUsageConventions(t *testing.T) {
	for _, cmd := range subcommands(t) {
		if cmd == "help" {
			continue
		}
		for _, args := range [][]string{{cmd, "-h"}, {cmd, "-help"}, {"help", cmd}} {
			var out, errb bytes.Buffer
			code := run(args, &out, &errb)
			if code != 0 || errb.Len() > 0 || !strings.HasPrefix(out.String(), "usage: v6edge "+cmd) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and %q's usage on stdout alone", args, code, out.String(), errb.String(), cmd)
			}
		}
		if cmd == "version" {
			continue
		}
		var out, errb bytes.Buffer
		code := run([]string{cmd, "-no-such-flag"}, &out, &errb)
		if code != 2 || out.Len() > 0 || !strings.Contains(errb.String(), "usage: v6edge "+cmd) {
			t.Errorf("%s -no-such-flag: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr alone", cmd, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != 2 || out.Len() > 0 || !strings.Contains(errb.String(), "commands:") {
		t.Errorf("no command: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"help", "run"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "-log-format") || strings.Contains(out.String(), "commands:") {
		t.Errorf("help run: exit %d, stdout %q: want run's usage, not the global one", code, out.String())
	}
}

func TestCheckWarnsAboutRunTimeFailures(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "hook.sh")
	os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o644) // not executable
	// This machine's interfaces: wan0 and lan0.
	defer func(saved func(string) (*net.Interface, error)) { interfaceByName = saved }(interfaceByName)
	interfaceByName = func(name string) (*net.Interface, error) {
		if name == "wan0" || name == "lan0" {
			return &net.Interface{Name: name}, nil
		}
		return nil, errors.New("no such network interface")
	}
	cfg := func(hook, group, lan string) string {
		p := filepath.Join(dir, "c.toml")
		h := ""
		if hook != "" {
			h = fmt.Sprintf("hook = %q\n", hook)
		}
		os.WriteFile(p, []byte(fmt.Sprintf("[wan]\ninterface = \"wan0\"\n%s[nat]\ninternal_prefix = \"fd00:1::/56\"\n[[lan]]\ninterface = %q\nsubnet = 1\n[control]\nsocket_group = %q\n", h, lan, group)), 0o644)
		return p
	}
	for _, tc := range []struct {
		name, hook, group, lan string
		want                   []string
	}{
		{"missing hook", filepath.Join(dir, "nohook.sh"), "root", "lan0", []string{"nohook.sh: no such file"}},
		{"hook not executable", hook, "root", "lan0", []string{"hook.sh is not executable"}},
		{"missing socket group", "", "v6edge-no-such-group", "lan0", []string{`socket_group "v6edge-no-such-group" does not exist`}},
		{"missing interface", "", "", "v6e-nosuch0", []string{"interface v6e-nosuch0 does not exist"}},
		{"nothing to warn about", "", "0", "lan0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			p := cfg(tc.hook, tc.group, tc.lan)
			if code := run([]string{"check", p}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ok") {
				t.Fatalf("exit %d, stdout %q, stderr %q: a warning must not fail check", code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), "warning: ") || !strings.Contains(errb.String(), w) {
					t.Errorf("stderr %q lacks the warning %q", errb.String(), w)
				}
			}
			if tc.want == nil && errb.Len() > 0 {
				t.Errorf("unexpected warnings: %q", errb.String())
			}
		})
	}
	if err := os.Chmod(hook, 0o755); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"check", cfg(hook, "", "lan0")}, &out, &errb); code != 0 || errb.Len() > 0 {
		t.Errorf("an executable hook: exit %d, stderr %q", code, errb.String())
	}
}

func TestStatusJSONWhenUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	var out, errb bytes.Buffer
	if code := run([]string{"status", "-json", "-socket", sock}, &out, &errb); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	var e struct {
		Error     string `json:"error"`
		Reachable *bool  `json:"reachable"`
		Socket    string `json:"socket"`
	}
	if err := json.Unmarshal(out.Bytes(), &e); err != nil {
		t.Fatalf("stdout is not JSON: %v: %q", err, out.String())
	}
	if e.Error == "" || e.Reachable == nil || *e.Reachable || e.Socket != sock {
		t.Errorf("error object %+v", e)
	}
}

func TestJournalPriorities(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(newJournalHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Error("lease lost", "wan", "wan0", "err", "no reply")
	log.Warn("dad failed", "addr", "fd00::1")
	log.With("lan", "lan0").WithGroup("ra").Info("sent", "count", 3)
	log.Debug("tick")
	want := "<3>lease lost wan=wan0 err=\"no reply\"\n" +
		"<4>dad failed addr=fd00::1\n" +
		"<6>sent lan=lan0 ra.count=3\n" +
		"<7>tick\n"
	if b.String() != want {
		t.Errorf("journal lines\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	quiet := slog.New(newJournalHandler(&b, &slog.HandlerOptions{Level: slog.LevelWarn}))
	quiet.Info("hidden")
	quiet.WarnContext(context.Background(), "shown")
	if b.String() != "<4>shown\n" {
		t.Errorf("level filter: %q", b.String())
	}
}

// -log-format auto picks the journal format exactly when stderr is the
// stream JOURNAL_STREAM names.
func TestJournalStreamDetection(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	if !journalStream(env, f) {
		t.Errorf("JOURNAL_STREAM=%s not recognised for its own file", env)
	}
	for _, other := range []string{"", "1:2", "garbage"} {
		if journalStream(other, f) {
			t.Errorf("JOURNAL_STREAM=%q taken for the journal", other)
		}
	}
	t.Setenv("JOURNAL_STREAM", env)
	h, err := logHandler("auto", f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := h.(*journalHandler); !ok {
		t.Errorf("auto under the journal gave %T", h)
	}
	t.Setenv("JOURNAL_STREAM", "")
	if h, _ := logHandler("auto", f, nil); h == nil {
		t.Error("auto without the journal gave no handler")
	} else if _, ok := h.(*journalHandler); ok {
		t.Error("auto without the journal gave the journal format")
	}
}
