package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
)

// logHandler returns the handler for -log-format. "auto" is "journal" when
// stderr is the stream systemd's journal gave the service (JOURNAL_STREAM
// names its device and inode, see systemd.exec(5)), else "text".
func logHandler(format string, w io.Writer, opts *slog.HandlerOptions) (slog.Handler, error) {
	if format == "auto" {
		format = "text"
		if f, ok := w.(*os.File); ok && journalStream(os.Getenv("JOURNAL_STREAM"), f) {
			format = "journal"
		}
	}
	switch format {
	case "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		return slog.NewJSONHandler(w, opts), nil
	case "journal":
		return newJournalHandler(w, opts), nil
	}
	return nil, fmt.Errorf("-log-format must be auto, text, json or journal, not %q", format)
}

// journalStream reports whether f is the stream JOURNAL_STREAM ("dev:inode")
// describes: only then does a "<N>" prefix reach the journal as a priority.
func journalStream(env string, f *os.File) bool {
	if env == "" {
		return false
	}
	var dev, ino uint64
	if n, err := fmt.Sscanf(env, "%d:%d", &dev, &ino); n != 2 || err != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && st.Ino == ino
}

// journalHandler writes a record as one line that systemd's journal reads
// from a stream (sd-daemon(3)): the syslog priority as "<N>", the message,
// then the attributes as key=value. The journal stamps the time, so the line
// carries none; `journalctl -p warning` selects by the prefix.
type journalHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	ops   []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
}

func newJournalHandler(w io.Writer, opts *slog.HandlerOptions) *journalHandler {
	h := &journalHandler{mu: new(sync.Mutex), w: w, level: slog.LevelInfo}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

// journalPriority maps a slog level to a syslog priority: err, warning,
// info, debug.
func journalPriority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	var attrs bytes.Buffer
	var inner slog.Handler = slog.NewTextHandler(&attrs, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})
	for _, op := range h.ops {
		inner = op(inner)
	}
	if err := inner.Handle(ctx, r); err != nil {
		return err
	}
	var line bytes.Buffer
	fmt.Fprintf(&line, "<%d>%s", journalPriority(r.Level), strings.ReplaceAll(r.Message, "\n", " "))
	if rest := bytes.TrimSpace(attrs.Bytes()); len(rest) > 0 {
		line.WriteByte(' ')
		line.Write(rest)
	}
	line.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(line.Bytes())
	return err
}

func (h *journalHandler) with(op func(slog.Handler) slog.Handler) *journalHandler {
	c := *h
	c.ops = append(append([]func(slog.Handler) slog.Handler(nil), h.ops...), op)
	return &c
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(in slog.Handler) slog.Handler { return in.WithAttrs(as) })
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return h.with(func(in slog.Handler) slog.Handler { return in.WithGroup(name) })
}
