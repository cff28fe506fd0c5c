package netif

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Event is one kernel notification about a link or one of its addresses.
// The Tracker treats it as a hint to look again, so a lost or coalesced
// event costs nothing but latency.
type Event struct {
	LinkIndex int
	// Link is set for link events (state, flags, name); Address and Flags
	// are set for address events.
	Link    bool
	Address netip.Prefix
	Flags   int
	Deleted bool
}

// Watcher delivers kernel events. Watch returns a channel that is closed when
// the subscription ends, either because ctx ended or because it failed (then
// the caller subscribes again and re-reads the state it may have missed).
type Watcher interface {
	Watch(ctx context.Context) (<-chan Event, error)
}

// NetlinkWatcher subscribes to RTNLGRP_IPV6_IFADDR and RTNLGRP_LINK through
// netlink sockets, in Namespace when it is set.
type NetlinkWatcher struct {
	Namespace *netns.NsHandle
	// OnError, when set, is told why a subscription ended (e.g. ENOBUFS after
	// an event burst overflowed the socket).
	OnError func(error)
}

var _ Watcher = NetlinkWatcher{}

// watchBuffer is the receive buffer asked for each subscription socket: an
// interface flap produces a burst of address events.
const watchBuffer = 1 << 20

// Watch subscribes to address and link events.
func (w NetlinkWatcher) Watch(ctx context.Context) (<-chan Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	addrs := make(chan netlink.AddrUpdate, 64)
	links := make(chan netlink.LinkUpdate, 16)
	onErr := func(err error) {
		if w.OnError != nil && ctx.Err() == nil {
			w.OnError(err)
		}
		// One failed subscription ends both: the caller resubscribes and
		// re-reads everything anyway.
		cancel()
	}
	err := netlink.AddrSubscribeWithOptions(addrs, ctx.Done(), netlink.AddrSubscribeOptions{
		Namespace: w.Namespace, ErrorCallback: onErr, ReceiveBufferSize: watchBuffer,
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribing to address events: %w", err)
	}
	err = netlink.LinkSubscribeWithOptions(links, ctx.Done(), netlink.LinkSubscribeOptions{
		Namespace: w.Namespace, ErrorCallback: onErr, ReceiveBufferSize: watchBuffer,
	})
	if err != nil {
		cancel()
		drain(addrs)
		return nil, fmt.Errorf("subscribing to link events: %w", err)
	}
	out := make(chan Event, 64)
	go func() {
		defer close(out)
		defer cancel()
		for addrs != nil && links != nil {
			var ev Event
			select {
			case u, ok := <-addrs:
				if !ok {
					addrs = nil
					continue
				}
				p, _ := prefixOf(&u.LinkAddress)
				ev = Event{LinkIndex: u.LinkIndex, Address: p, Flags: u.Flags, Deleted: !u.NewAddr}
			case u, ok := <-links:
				if !ok {
					links = nil
					continue
				}
				ev = Event{LinkIndex: int(u.Index), Link: true, Deleted: u.Header.Type == unix.RTM_DELLINK}
			case <-ctx.Done():
				// The library's reader goroutines block on their channel
				// until they notice the closed socket: keep draining so they
				// can end.
				drain(addrs)
				drain(links)
				return
			}
			select {
			case out <- ev:
			case <-ctx.Done():
			}
		}
		// One side failed: end the other and let the caller resubscribe.
		cancel()
		drain(addrs)
		drain(links)
	}()
	return out, nil
}

// drain reads ch until it is closed; nil channels are skipped.
func drain[T any](ch <-chan T) {
	if ch == nil {
		return
	}
	for range ch {
	}
}
