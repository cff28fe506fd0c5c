package uplink

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/mdlayher/netlink"
	"github.com/ti-mo/conntrack"
	"github.com/ti-mo/netfilter"
)

// FlushUplink deletes, in the current network namespace, the IPv6 conntrack entries whose
// mark is mark: every flow an uplink carries (inbound ones marked by nat, outbound ones by
// Marks). Call it when the uplink fails: its flows are pinned to it by their mark and by
// their translation into its prefix, so they would otherwise stay black-holed until they
// time out; deleted, the next packet starts a new flow by the uplink now preferred. It
// returns how many entries it deleted.
func FlushUplink(mark uint32) (int, error) {
	return flushUplink(nil, mark)
}

// FlushUplinkIn is FlushUplink in the network namespace open at nsFd.
func FlushUplinkIn(nsFd int, mark uint32) (int, error) {
	return flushUplink(&netlink.Config{NetNS: nsFd}, mark)
}

func flushUplink(cfg *netlink.Config, mark uint32) (int, error) {
	if mark == 0 {
		// Mark 0 is every unmarked flow: never what an uplink failure means.
		return 0, errors.New("uplink: refusing to flush conntrack entries with mark 0")
	}
	c, err := conntrack.Dial(cfg)
	if err != nil {
		return 0, fmt.Errorf("uplink: opening conntrack netlink: %w", err)
	}
	defer c.Close()
	// The kernel filters by mark (exact match) and family since Linux 4.20.
	flows, err := c.DumpFilter(conntrack.NewFilter().Family(netfilter.ProtoIPv6).Mark(mark), nil)
	if err != nil {
		return 0, fmt.Errorf("uplink: listing conntrack entries with mark %#x: %w", mark, err)
	}
	n := 0
	var errs []error
	for _, f := range flows {
		if f.Mark != mark {
			continue // an older kernel ignored the filter
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
		return n, fmt.Errorf("uplink: deleting conntrack entries with mark %#x: %w", mark, errors.Join(errs...))
	}
	return n, nil
}
