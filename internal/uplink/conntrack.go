package uplink

import (
	"errors"
	"fmt"

	"github.com/v6edge/v6edge/internal/ctflush"
)

// FlushUplink deletes, in the current network namespace, the IPv6 conntrack entries whose
// mark is mark: every flow an uplink carries (inbound ones marked by nat, outbound ones by
// Marks). Call it when the uplink fails: its flows are pinned to it by their mark and by
// their translation into its prefix, so they would otherwise stay black-holed until they
// time out; deleted, the next packet starts a new flow by the uplink now preferred. It
// returns how many entries it deleted.
func FlushUplink(mark uint32) (int, error) {
	return flushUplink(-1, mark)
}

// FlushUplinkIn is FlushUplink in the network namespace open at nsFd.
func FlushUplinkIn(nsFd int, mark uint32) (int, error) {
	return flushUplink(nsFd, mark)
}

func flushUplink(nsFd int, mark uint32) (int, error) {
	if mark == 0 {
		// Mark 0 is every unmarked flow: never what an uplink failure means.
		return 0, errors.New("uplink: refusing to flush conntrack entries with mark 0")
	}
	n, err := ctflush.Delete(nsFd, ctflush.Select{Mark: mark})
	if err != nil {
		return n, fmt.Errorf("uplink: flushing conntrack entries with mark %#x: %w", mark, err)
	}
	return n, nil
}
