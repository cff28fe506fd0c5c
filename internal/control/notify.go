package control

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends a sd_notify(3) state string ("READY=1", "STOPPING=1",
// "STATUS=...") to systemd. Without NOTIFY_SOCKET it does nothing, so the
// daemon runs the same with and without systemd.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract namespace socket
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// WatchdogInterval returns half of systemd's WatchdogSec (WATCHDOG_USEC) when
// the watchdog is meant for this process, else 0.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// Watchdog sends WATCHDOG=1 every interval while alive() reports the event
// loop is turning, until ctx ends. A wedged loop stops the keepalives and
// systemd restarts the daemon.
func Watchdog(ctx context.Context, interval time.Duration, alive func() bool) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				_ = Notify("WATCHDOG=1")
			}
		}
	}
}
