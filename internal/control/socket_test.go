package control

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type fakeHandler struct {
	renews, releases atomic.Int32
	role             atomic.Value
}

func (f *fakeHandler) Status() Status {
	return Status{WAN: WAN{Interface: "wan0", State: "bound"}, Problems: []string{"p1"}}
}
func (f *fakeHandler) Renew() error   { f.renews.Add(1); return nil }
func (f *fakeHandler) Release() error { f.releases.Add(1); return nil }
func (f *fakeHandler) SetRole(r string) error {
	f.role.Store(r)
	return nil
}

func startServer(t *testing.T) (string, *fakeHandler) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	h := &fakeHandler{}
	s := &Server{Path: path, H: h}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("socket left behind after stop: %v", err)
		}
	})
	return path, h
}

func TestControlSocket(t *testing.T) {
	path, h := startServer(t)
	ctx := context.Background()

	t.Run("the socket is only for its owner", func(t *testing.T) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("mode = %o, want 600", got)
		}
	})
	t.Run("status returns the handler's snapshot", func(t *testing.T) {
		r, err := Call(ctx, path, Request{Command: "status"})
		if err != nil || !r.OK || r.Status == nil {
			t.Fatalf("Call = %+v, %v", r, err)
		}
		if r.Status.WAN.State != "bound" || r.Status.Healthy() {
			t.Errorf("status = %+v", r.Status)
		}
	})
	t.Run("renew and release reach the handler", func(t *testing.T) {
		for _, c := range []string{"renew", "release", "renew"} {
			if r, err := Call(ctx, path, Request{Command: c}); err != nil || !r.OK {
				t.Fatalf("%s: %+v, %v", c, r, err)
			}
		}
		if h.renews.Load() != 2 || h.releases.Load() != 1 {
			t.Errorf("renews=%d releases=%d", h.renews.Load(), h.releases.Load())
		}
	})
	t.Run("unknown commands and roles are refused", func(t *testing.T) {
		for _, req := range []Request{{Command: "reboot"}, {Command: "ha", Role: "king"}} {
			r, err := Call(ctx, path, req)
			if err != nil {
				t.Fatal(err)
			}
			if r.OK || r.Error == "" {
				t.Errorf("%+v accepted: %+v", req, r)
			}
		}
		if r, _ := Call(ctx, path, Request{Command: "ha", Role: "backup"}); !r.OK || h.role.Load() != "backup" {
			t.Errorf("ha backup: %+v role=%v", r, h.role.Load())
		}
	})
	t.Run("garbage is answered with an error, not a hang", func(t *testing.T) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("{\"command\": \"status\", \"bogus\": 1}\n"))
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if !strings.Contains(string(buf[:n]), "bad request") {
			t.Errorf("got %q", buf[:n])
		}
	})
	t.Run("a silent client does not block others", func(t *testing.T) {
		idle, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		if r, err := Call(ctx, path, Request{Command: "status"}); err != nil || !r.OK {
			t.Fatalf("status while another client idles: %+v %v", r, err)
		}
	})
	t.Run("a second daemon refuses a live socket", func(t *testing.T) {
		s2 := &Server{Path: path, H: h}
		if err := s2.Listen(); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("Listen on live socket: %v", err)
		}
	})
}

func TestCallUnreachable(t *testing.T) {
	_, err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), Request{Command: "status"})
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("err = %v, want ErrUnreachable", err)
	}
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := ln.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Errorf("got %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("without systemd: %v", err)
	}
}

func TestStatusTablePutsProblemsFirst(t *testing.T) {
	s := Status{
		WAN:       WAN{Interface: "wan0", State: "bound", Prefix: "2001:db8:100::/56"},
		Problems:  []string{"lan0: fd00::1 failed duplicate address detection"},
		Addresses: []Address{{Interface: "lan0", Address: "fd00::2/64", State: "ok"}, {Interface: "lan0", Address: "fd00::1/64", State: "dadfailed"}},
	}
	var b strings.Builder
	if err := s.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.HasPrefix(out, "PROBLEMS (1)") {
		t.Errorf("table does not start with problems:\n%s", out)
	}
	if strings.Index(out, "fd00::1/64") > strings.Index(out, "fd00::2/64") {
		t.Errorf("failed address not listed before the healthy one:\n%s", out)
	}
}
