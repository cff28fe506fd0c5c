package netif

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// MACHandle is a Handle that can also change a link's MAC: what moving an
// HA pair's shared WAN MAC needs.
type MACHandle interface {
	Handle
	LinkSetHardwareAddr(link netlink.Link, hwaddr net.HardwareAddr) error
}

var _ MACHandle = (*netlink.Handle)(nil)

// SharedMAC owns the HA pair's shared WAN MAC on one node: the master holds
// it (and the link-local derived from it, so its DHCPv6 and RS traffic come
// from the address the upstream knows), the backup wears the WAN's own MAC.
// Hold and Give are idempotent and safe for concurrent use; Hold reports
// whether this call took the MAC over, so the caller can announce it.
type SharedMAC struct {
	h     MACHandle
	iface string
	mac   net.HardwareAddr
	log   *slog.Logger

	mu      sync.Mutex
	own     net.HardwareAddr // the WAN's MAC before we touched it
	holding bool
}

// NewSharedMAC reads the WAN's own MAC now, before anything moves it: that
// is the one Give restores.
func NewSharedMAC(h MACHandle, iface string, mac net.HardwareAddr, log *slog.Logger) *SharedMAC {
	s := &SharedMAC{h: h, iface: iface, mac: slices.Clone(mac), log: log}
	if link, err := h.LinkByName(iface); err == nil {
		s.own = slices.Clone(link.Attrs().HardwareAddr)
	}
	return s
}

// LinkLocal is the link-local the shared MAC gives the WAN.
func (s *SharedMAC) LinkLocal() netip.Addr { return EUI64LinkLocal(s.mac) }

// Holding reports whether this node holds the shared MAC.
func (s *SharedMAC) Holding() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding
}

// Hold puts the shared MAC and its link-local on the WAN. The link-local
// goes on without DAD: the old master may still hold it for a moment.
func (s *SharedMAC) Hold() (took bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	link, err := s.h.LinkByName(s.iface)
	if err != nil {
		return false, fmt.Errorf("shared WAN MAC: %w", err)
	}
	if link.Attrs().HardwareAddr.String() != s.mac.String() {
		if err := s.h.LinkSetHardwareAddr(link, s.mac); err != nil {
			return false, fmt.Errorf("taking over the shared WAN MAC %s on %s: %w", s.mac, s.iface, err)
		}
	}
	ll := s.LinkLocal()
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ll, 64)), Flags: unix.IFA_F_NODAD}
	if err := s.h.AddrReplace(link, addr); err != nil {
		return false, fmt.Errorf("adding %s, the link-local of the shared MAC, on %s: %w", ll, s.iface, err)
	}
	took = !s.holding
	if took {
		s.holding = true
		s.log.Info("HA: holding the shared WAN MAC", "iface", s.iface, "mac", s.mac, "link_local", ll)
	}
	return took, nil
}

// Give removes what Hold put on the WAN and restores the WAN's own MAC.
func (s *SharedMAC) Give() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	link, err := s.h.LinkByName(s.iface)
	if err != nil {
		if isLinkNotFound(err) {
			s.holding = false
			return nil
		}
		return fmt.Errorf("shared WAN MAC: %w", err)
	}
	var errs []error
	ll := s.LinkLocal()
	if err := s.h.AddrDel(link, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ll, 64))}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		errs = append(errs, err)
	}
	// SLAAC addresses the upstream's RAs made from the shared MAC (RFC 4862
	// §5.5.3) belong to the pair too: left here they would collide with the
	// new master's.
	iid := ll.As16()
	if addrs, err := addrList(s.h, link); err == nil {
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP); ok && [8]byte(ip.AsSlice()[8:]) == [8]byte(iid[8:]) {
				if err := s.h.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					errs = append(errs, err)
				}
			}
		}
	}
	if s.own != nil && link.Attrs().HardwareAddr.String() != s.own.String() {
		if err := s.h.LinkSetHardwareAddr(link, s.own); err != nil {
			errs = append(errs, fmt.Errorf("giving back the shared WAN MAC on %s: %w", s.iface, err))
		}
	}
	if s.holding {
		s.holding = false
		s.log.Info("HA: released the shared WAN MAC", "iface", s.iface)
	}
	return errors.Join(errs...)
}

// EUI64LinkLocal is the modified EUI-64 link-local of a 48-bit MAC (RFC 4291
// appendix A): the universal/local bit flips.
func EUI64LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	if len(mac) != 6 {
		return netip.Addr{}
	}
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}
