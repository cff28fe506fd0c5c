package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is a background process started in a namespace by Lab.Start. It runs
// in its own process group so that Stop and Kill also reach the helpers it
// forks (dhcpcd's privilege-separation processes outlive a kill of the main
// process otherwise).
type Proc struct {
	Name    string // short name, also the log file's base name
	LogPath string // stdout and stderr of the process

	// StopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL.
	StopTimeout time.Duration

	cmd  *exec.Cmd
	pgid int
	done chan struct{}

	mu  sync.Mutex
	err error
}

// Start runs args in the namespace ns in the background, with stdout and
// stderr going to Dir/name.log. Cancelling ctx kills the process group. The
// lab stops the process at Close if the caller has not.
func (l *Lab) Start(ctx context.Context, ns, name string, args ...string) (*Proc, error) {
	return l.startEnv(ctx, ns, name, nil, args...)
}

func (l *Lab) startEnv(ctx context.Context, ns, name string, env []string, args ...string) (*Proc, error) {
	if len(args) == 0 {
		return nil, errors.New("lab: start: no command")
	}
	logPath := l.path(name + ".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	defer f.Close()
	var cmd *exec.Cmd
	if ns == "" {
		cmd = exec.Command(args[0], args[1:]...)
	} else {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Own process group: Stop signals the whole group. Pdeathsig kills the
	// leader if the test binary dies without running Close.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("lab: start %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, StopTimeout: 5 * time.Second, cmd: cmd, pgid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Kill()
		case <-p.done:
		}
	}()
	l.track(p)
	return p, nil
}

// Pid is the process id of the group leader.
func (p *Proc) Pid() int { return p.pgid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Log returns everything the process has written so far.
func (p *Proc) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// Wait waits at most timeout for the process to exit and returns its exit
// error (nil for a clean exit).
func (p *Proc) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-t.C:
		return fmt.Errorf("lab: %s still running after %v", p.Name, timeout)
	}
}

// Stop sends SIGTERM to the process group and waits StopTimeout for the
// leader to exit, then kills the group. It returns nil if the process is
// gone, whatever its exit status was: a process stopped by a signal is the
// expected outcome here.
func (p *Proc) Stop() error {
	select {
	case <-p.done:
		p.sweep()
		return nil
	default:
	}
	_ = syscall.Kill(-p.pgid, syscall.SIGTERM)
	if err := p.Wait(p.StopTimeout); err == nil || p.exited() {
		p.sweep()
		return nil
	}
	return p.Kill()
}

// Kill sends SIGKILL to the process group and waits (bounded) for the leader.
func (p *Proc) Kill() error {
	_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
	_ = p.Wait(5 * time.Second)
	if !p.exited() {
		return fmt.Errorf("lab: %s (pid %d) survived SIGKILL for 5s", p.Name, p.pgid)
	}
	p.sweep()
	return nil
}

// sweep kills group members that outlived the leader (forked helpers). It
// runs right after the leader was reaped, while the group id still names
// our group.
func (p *Proc) sweep() { _ = syscall.Kill(-p.pgid, syscall.SIGKILL) }

func (p *Proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func killPid(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }
