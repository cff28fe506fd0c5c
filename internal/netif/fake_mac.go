package netif

import (
	"fmt"
	"net"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// AddrReplace implements Handle: an address already there keeps its DAD
// state and takes the new lifetimes, as the kernel's NLM_F_REPLACE does; a
// missing one is added.
func (f *FakeHandle) AddrReplace(link netlink.Link, addr *netlink.Addr) error {
	p, _ := prefixOf(addr.IPNet)
	f.mu.Lock()
	f.Calls["AddrReplace"]++
	idx := link.Attrs().Index
	if i := f.find(idx, p.Addr()); i >= 0 {
		x := &f.addrs[idx][i]
		x.PreferedLft, x.ValidLft = addr.PreferedLft, addr.ValidLft
		x.Flags |= addr.Flags & unix.IFA_F_NODAD
		f.emit(Event{LinkIndex: idx, Address: p, Flags: x.Flags})
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	return f.AddrAdd(link, addr)
}
