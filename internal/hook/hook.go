package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Reasons, as dhcpcd names them for DHCPv6 (dhcpcd-run-hooks(8)).
const (
	Bound   = "BOUND6"
	Renew   = "RENEW6"
	Rebind  = "REBIND6"
	Reboot  = "REBOOT6" // a saved lease confirmed after a restart
	Expire  = "EXPIRE6"
	Release = "RELEASE6"
	Stop    = "STOP6"
)

// Prefix is one delegated prefix with its lifetimes.
type Prefix struct {
	Prefix    netip.Prefix
	Preferred time.Duration
	Valid     time.Duration
}

// Event is one lease event.
type Event struct {
	Reason    string
	Interface string
	IAID      uint32
	New, Old  []Prefix
}

// Env returns the dhcpcd-compatible environment of e (without the
// inherited process environment).
func (e Event) Env() []string {
	env := []string{"reason=" + e.Reason, "interface=" + e.Interface, "protocol=dhcp6", "pid=" + strconv.Itoa(os.Getpid())}
	add := func(side string, ps []Prefix) {
		if len(ps) > 0 {
			env = append(env, fmt.Sprintf("%s_dhcp6_ia_pd1_iaid=%08x", side, e.IAID))
		}
		for i, p := range ps {
			k := fmt.Sprintf("%s_dhcp6_ia_pd1_prefix%d", side, i+1)
			env = append(env,
				k+"="+p.Prefix.Addr().String(),
				k+"_length="+strconv.Itoa(p.Prefix.Bits()),
				k+"_pltime="+strconv.FormatInt(int64(p.Preferred/time.Second), 10),
				k+"_vltime="+strconv.FormatInt(int64(p.Valid/time.Second), 10),
			)
		}
	}
	add("new", e.New)
	add("old", e.Old)
	return env
}

// Runner runs one script for a stream of events.
type Runner struct {
	Path    string
	Timeout time.Duration // default 10 s
	Log     *slog.Logger

	mu      sync.Mutex
	queue   []Event
	running bool
	idle    chan struct{}
}

// maxQueue bounds the backlog of a script slower than the events: the oldest
// are dropped (and logged), the newest state always reaches the script.
const maxQueue = 16

// Fire queues e and returns at once.
func (r *Runner) Fire(ctx context.Context, e Event) {
	if r == nil || r.Path == "" {
		return
	}
	r.mu.Lock()
	if len(r.queue) >= maxQueue {
		r.Log.Warn("hook script backlog full; dropping the oldest event", "script", r.Path, "reason", r.queue[0].Reason)
		r.queue = r.queue[1:]
	}
	r.queue = append(r.queue, e)
	if r.running {
		r.mu.Unlock()
		return
	}
	r.running = true
	r.idle = make(chan struct{})
	r.mu.Unlock()
	go r.drain(ctx)
}

// Wait blocks until the queue is empty (tests, clean stop).
func (r *Runner) Wait() {
	r.mu.Lock()
	idle := r.idle
	running := r.running
	r.mu.Unlock()
	if running {
		<-idle
	}
}

func (r *Runner) drain(ctx context.Context) {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			close(r.idle)
			r.mu.Unlock()
			return
		}
		e := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		if err := r.run(ctx, e); err != nil {
			r.Log.Error("hook script failed", "script", r.Path, "reason", e.Reason, "iface", e.Interface, "err", err)
		}
	}
}

// run executes the script once. It runs in its own process group so a
// timeout kills whatever the script started too.
func (r *Runner) run(ctx context.Context, e Event) error {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Path)
	cmd.Env = append(os.Environ(), e.Env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("killed after %s (timeout): output %q", timeout, tail(out.Bytes()))
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("exit %d: output %q", ee.ExitCode(), tail(out.Bytes()))
		}
		return err
	}
	r.Log.Info("hook script ran", "script", r.Path, "reason", e.Reason, "iface", e.Interface, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func tail(b []byte) string {
	const n = 512
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// Classify names the dhcpcd reason for a lease transition of one uplink.
// old and new are the chosen prefixes before and after (invalid = none);
// state is the client's state after the change.
func Classify(state string, old, new netip.Prefix, restarted bool) string {
	switch {
	case !new.IsValid() && old.IsValid() && state == "released":
		return Release
	case !new.IsValid() && old.IsValid():
		return Expire
	case !new.IsValid():
		return ""
	case restarted && old == new:
		return Reboot
	case old != new:
		return Bound
	case state == "rebinding":
		return Rebind
	default:
		return Renew
	}
}
