package netif

import (
	"fmt"
	"net"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
)

var _ MACHandle = (*FakeHandle)(nil)

// LinkSetHardwareAddr implements MACHandle.
func (f *FakeHandle) LinkSetHardwareAddr(link netlink.Link, hwaddr net.HardwareAddr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["LinkSetHardwareAddr"]++
	for _, l := range f.links {
		if l.Index == link.Attrs().Index {
			l.HardwareAddr = slices.Clone(hwaddr)
			f.emit(Event{LinkIndex: l.Index, Link: true})
			return nil
		}
	}
	return fmt.Errorf("fake LinkSetHardwareAddr: %w", syscall.ENODEV)
}

// AddrReplace implements MACHandle: the address ends up there exactly once,
// with the new flags.
func (f *FakeHandle) AddrReplace(link netlink.Link, addr *netlink.Addr) error {
	p, _ := prefixOf(addr.IPNet)
	f.mu.Lock()
	i := f.find(link.Attrs().Index, p.Addr())
	f.mu.Unlock()
	if i >= 0 {
		if err := f.AddrDel(link, addr); err != nil {
			return err
		}
	}
	return f.AddrAdd(link, addr)
}
