package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
)

// FlushConntrack deletes, in the current network namespace, the conntrack entries whose
// translation uses the old external prefix: outbound flows whose source was mapped into it
// (their reply goes to an address in old) and inbound or hairpin flows opened to an
// address in it. NAT is bound to conntrack entries, so without this a flow keeps a source
// address the upstream no longer routes until it times out. It returns how many it deleted.
func FlushConntrack(old netip.Prefix) (int, error) {
	return flushConntrack(nil, old)
}

// FlushConntrackIn is FlushConntrack in the network namespace open at nsFd.
func FlushConntrackIn(nsFd int, old netip.Prefix) (int, error) {
	return flushConntrack(&netlink.Config{NetNS: nsFd}, old)
}

func flushConntrack(cfg *netlink.Config, old netip.Prefix) (int, error) {
	if !old.IsValid() || !old.Addr().Is6() {
		return 0, fmt.Errorf("nat: flushing conntrack: %v is not an IPv6 prefix", old)
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return 0, fmt.Errorf("nat: opening conntrack netlink: %w", err)
	}
	defer c.Close()
	flows, err := c.Dump(nil)
	if err != nil {
		return 0, fmt.Errorf("nat: listing conntrack entries: %w", err)
	}
	n := 0
	var errs []error
	for _, f := range flows {
		if !UsesPrefix(f, old) {
			continue
		}
		if err := c.Delete(f); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				continue // expired meanwhile
			}
			errs = append(errs, err)
			continue
		}
		n++
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("nat: deleting conntrack entries of %v: %w", old, errors.Join(errs...))
	}
	return n, nil
}

// UsesPrefix reports whether a conntrack flow is translated to or from p: its reply goes to
// an address in p (source NAT into p) or it was opened to an address in p (destination NAT
// out of p).
func UsesPrefix(f conntrack.Flow, p netip.Prefix) bool {
	return p.Contains(f.TupleReply.IP.DestinationAddress.Unmap()) ||
		p.Contains(f.TupleOrig.IP.DestinationAddress.Unmap())
}
