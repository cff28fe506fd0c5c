package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// ReadBufferSize is the receive buffer Open asks for: it holds the kernel's echo of every
// rule of a large batch.
const ReadBufferSize = 8 << 20

// Open returns a lasting netlink connection to nftables in the network namespace open at
// nsFd (-1: the current one), with a ReadBufferSize receive buffer. Close it with
// CloseLasting.
func Open(nsFd int) (*nftables.Conn, error) {
	c, err := nftables.New(connOptions(nsFd, nftables.WithSockOptions(bigReadBuffer))...)
	if err != nil {
		return nil, fmt.Errorf("opening nftables netlink connection: %w", err)
	}
	return c, nil
}

func connOptions(nsFd int, extra ...nftables.ConnOption) []nftables.ConnOption {
	opts := append([]nftables.ConnOption{nftables.AsLasting()}, extra...)
	if nsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(nsFd))
	}
	return opts
}

func bigReadBuffer(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		// SO_RCVBUFFORCE ignores net.core.rmem_max (needs CAP_NET_ADMIN, which
		// changing nftables needs anyway); fall back to the capped SO_RCVBUF.
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ReadBufferSize)
		if serr != nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, ReadBufferSize)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// MonitorFunc subscribes to change events: events gets one signal per transaction (a
// pending signal covers any number of them) and is closed when the subscription dies;
// stop ends it.
type MonitorFunc func() (events <-chan struct{}, stop func(), err error)

// Monitor subscribes to nftables' change notifications in the network namespace open at
// nsFd (-1: the current one) and signals once per transaction. Its socket has a
// ReadBufferSize receive buffer, so that the notifications of a large batch do not end
// it.
func Monitor(nsFd int) (<-chan struct{}, func(), error) {
	// The big buffer here too: the kernel notifies every rule of a batch, and a
	// monitor socket that overflows (ENOBUFS) ends the subscription.
	c, err := nftables.New(connOptions(nsFd, nftables.WithSockOptions(bigReadBuffer))...)
	if err != nil {
		return nil, nil, fmt.Errorf("opening nftables netlink connection: %w", err)
	}
	// Unfiltered on purpose: google/nftables v0.3.0 hands events over at
	// each generation message, which a narrowed monitor drops as well.
	mon := nftables.NewMonitor(nftables.WithMonitorEventBuffer(64))
	gens, err := c.AddGenerationalMonitor(mon)
	if err != nil {
		c.CloseLasting()
		return nil, nil, fmt.Errorf("subscribing to nftables changes: %w", err)
	}
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		for range gens {
			select {
			case out <- struct{}{}:
			default: // one pending signal is enough
			}
		}
	}()
	return out, func() { mon.Close(); c.CloseLasting() }, nil
}

// MonitorIn returns the MonitorFunc of Monitor(nsFd).
func MonitorIn(nsFd int) MonitorFunc {
	return func() (<-chan struct{}, func(), error) { return Monitor(nsFd) }
}
