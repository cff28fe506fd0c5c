package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Request is what a client sends: one JSON object per connection.
type Request struct {
	Command string `json:"command"`        // "status", "renew", "release", "ha"
	Role    string `json:"role,omitempty"` // for "ha": master|backup|fault
}

// Response is the daemon's answer.
type Response struct {
	OK     bool    `json:"ok"`
	Error  string  `json:"error,omitempty"`
	Status *Status `json:"status,omitempty"`
}

// Handler is implemented by the daemon. Every method must return quickly:
// Status reads a snapshot, the others queue a request for the event loop.
type Handler interface {
	Status() Status
	Renew() error
	Release() error
	SetRole(role string) error
}

// ioTimeout bounds how long one client may hold a connection.
const ioTimeout = 2 * time.Second

// maxRequest bounds the size of a request; anything larger is refused.
const maxRequest = 4096

// Server serves the control socket.
type Server struct {
	Path  string
	Group string // optional group that may use the socket (mode 0660); else 0600
	H     Handler
	Log   *slog.Logger

	ln net.Listener
	wg sync.WaitGroup
}

// Listen creates the socket, replacing a stale one left by a crashed daemon.
// It refuses to replace a socket that another daemon still answers on.
func (s *Server) Listen() error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("creating control socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", s.Path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s is in use: is another v6edge running?", s.Path)
	}
	_ = os.Remove(s.Path)
	// Create the socket with a restrictive umask-equivalent: bind then chmod
	// before anyone can have connected, because accept does not run yet.
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return fmt.Errorf("listening on control socket: %w", err)
	}
	mode := os.FileMode(0o600)
	if s.Group != "" {
		gid, err := LookupGroup(s.Group)
		if err != nil {
			ln.Close()
			return fmt.Errorf("control socket group %q: %w", s.Group, err)
		}
		if err := os.Chown(s.Path, -1, gid); err != nil {
			ln.Close()
			return fmt.Errorf("chown control socket: %w", err)
		}
		mode = 0o660
	}
	if err := os.Chmod(s.Path, mode); err != nil {
		ln.Close()
		return fmt.Errorf("chmod control socket: %w", err)
	}
	s.ln = ln
	return nil
}

// LookupGroup resolves control.socket_group, a group name or a numeric id,
// to its gid.
func LookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return 0, err
		}
		if g, err = user.LookupGroupId(name); err != nil {
			return 0, err
		}
	}
	return strconv.Atoi(g.Gid)
}

// Run accepts connections until ctx is cancelled, then removes the socket.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.wg.Wait()
				_ = os.Remove(s.Path)
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("control socket accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
		}()
	}
}

func (s *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	var req Request
	dec := json.NewDecoder(io.LimitReader(c, maxRequest))
	dec.DisallowUnknownFields()
	resp := Response{}
	if err := dec.Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		resp = s.handle(req)
	}
	if !resp.OK && s.Log != nil {
		s.Log.Debug("control request refused", "command", req.Command, "err", resp.Error)
	}
	_ = json.NewEncoder(c).Encode(resp)
}

func (s *Server) handle(req Request) Response {
	var err error
	switch req.Command {
	case "status":
		st := s.H.Status()
		return Response{OK: true, Status: &st}
	case "renew":
		err = s.H.Renew()
	case "release":
		err = s.H.Release()
	case "ha":
		switch req.Role {
		case "master", "backup", "fault":
			err = s.H.SetRole(req.Role)
		default:
			err = fmt.Errorf("unknown role %q (want master, backup or fault)", req.Role)
		}
	default:
		err = fmt.Errorf("unknown command %q", req.Command)
	}
	if err != nil {
		return Response{Error: err.Error()}
	}
	return Response{OK: true}
}

// ErrUnreachable wraps every failure to talk to the daemon at all, so the
// CLI can exit 2 for it (SPEC.md) and 1 for a daemon that answered badly.
var ErrUnreachable = errors.New("daemon not reachable")

// Call sends one request to the daemon at path and returns its response.
func Call(ctx context.Context, path string, req Request) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer c.Close()
	deadline := time.Now().Add(ioTimeout + time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, fmt.Errorf("%w: sending request: %v", ErrUnreachable, err)
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("%w: reading response: %v", ErrUnreachable, err)
	}
	return &resp, nil
}
