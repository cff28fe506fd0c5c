package ha

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
)

// Unsolicited Neighbor Advertisements after a takeover (RFC 5798 §6.4.1,
// RFC 4861 §7.2.6). v6edge moves the virtual addresses between routers with
// different MACs, so hosts hold neighbor cache entries that point at the old
// master; an NA with the Override flag repoints them at once instead of
// after Neighbor Unreachability Detection gives up (seconds).
const (
	// announceCount is MAX_NEIGHBOR_ADVERTISEMENT (RFC 4861 §10).
	announceCount = 3
	// announceGap is RetransTimer (RFC 4861 §10), the least spacing between
	// them: a host that missed the first gets another chance.
	announceGap = time.Second
)

// allNodes is where unsolicited NAs go (RFC 4861 §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// Announce sends one unsolicited Neighbor Advertisement for each of addrs on
// ifname, from the interface's MAC, with Router and Override set and
// Solicited clear. The source is the interface's own link-local
// (OwnLinkLocal, excluding addrs), which RFC 4861 §7.2.6 allows and which,
// unlike the virtual one, is there even if the caller adds the virtual
// addresses a moment later.
func Announce(ifname string, addrs []netip.Addr) error {
	if len(addrs) == 0 {
		return nil
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("ha: announcing on %s: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) == 0 {
		return fmt.Errorf("ha: announcing on %s: the interface has no MAC", ifname)
	}
	src, err := OwnLinkLocal(ifname, addrs...)
	if err != nil {
		return err
	}
	c, _, err := ndp.Listen(ifi, ndp.Addr(src.String()))
	if err != nil {
		return fmt.Errorf("ha: announcing on %s from %v: %w", ifname, src, err)
	}
	defer c.Close()
	var errs []error
	for _, a := range addrs {
		na := &ndp.NeighborAdvertisement{
			Router:        true,
			Override:      true,
			TargetAddress: a,
			Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: ifi.HardwareAddr}},
		}
		if err := c.WriteTo(na, nil, allNodes); err != nil {
			errs = append(errs, fmt.Errorf("ha: announcing %v on %s: %w", a, ifname, err))
		}
	}
	return errors.Join(errs...)
}
