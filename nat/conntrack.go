package nat

import (
	"fmt"
	"net/netip"

	"github.com/ti-mo/conntrack"

	"github.com/v6edge/v6edge/internal/ctflush"
)

// FlushConntrack deletes, in the current network namespace, the conntrack entries whose
// translation uses the old external prefix: outbound flows whose source was mapped into it
// (their reply goes to an address in old) and inbound or hairpin flows opened to an
// address in it. NAT is bound to conntrack entries, so without this a flow keeps a source
// address the upstream no longer routes until it times out. It returns how many it deleted.
func FlushConntrack(old netip.Prefix) (int, error) {
	return flushConntrack(-1, old)
}

// FlushConntrackIn is FlushConntrack in the network namespace open at nsFd.
func FlushConntrackIn(nsFd int, old netip.Prefix) (int, error) {
	return flushConntrack(nsFd, old)
}

func flushConntrack(nsFd int, old netip.Prefix) (int, error) {
	if !old.IsValid() || !old.Addr().Is6() {
		return 0, fmt.Errorf("nat: flushing conntrack: %v is not an IPv6 prefix", old)
	}
	n, err := ctflush.Delete(nsFd, ctflush.Select{Match: func(f conntrack.Flow) bool { return UsesPrefix(f, old) }})
	if err != nil {
		return n, fmt.Errorf("nat: flushing conntrack entries of %v: %w", old, err)
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
