package netif

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// FakeHandle is an in-memory Handle and Watcher for tests: links,
// addresses with flags, and routes. AddrAdd without IFA_F_NODAD leaves the
// address tentative until the test calls FinishDAD; every change is sent to
// the channels returned by Watch, like the kernel's notifications.
type FakeHandle struct {
	mu     sync.Mutex
	links  []*netlink.Dummy
	addrs  map[int][]netlink.Addr
	routes []netlink.Route
	subs   []chan Event
	// Calls counts calls by method name ("AddrAdd", "AddrList", ...).
	// Read it only while nothing else uses the FakeHandle.
	Calls map[string]int
}

var (
	_ Handle  = (*FakeHandle)(nil)
	_ Watcher = (*FakeHandle)(nil)
)

// NewFakeHandle returns a FakeHandle with the named links, up and with
// carrier, numbered from 2 (1 is lo).
func NewFakeHandle(names ...string) *FakeHandle {
	f := &FakeHandle{addrs: map[int][]netlink.Addr{}, Calls: map[string]int{}}
	for _, n := range names {
		f.AddLink(n)
	}
	return f
}

// AddLink adds a link that is up and has carrier.
func (f *FakeHandle) AddLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := 2 + len(f.links)
	f.links = append(f.links, &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{
		Name: name, Index: idx, Flags: net.FlagUp, RawFlags: unix.IFF_UP | unix.IFF_LOWER_UP,
	}})
	f.emit(Event{LinkIndex: idx, Link: true})
}

// SetCarrier changes a link's carrier (IFF_LOWER_UP).
func (f *FakeHandle) SetCarrier(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.link(name)
	if on {
		l.RawFlags |= unix.IFF_LOWER_UP
	} else {
		l.RawFlags &^= unix.IFF_LOWER_UP
	}
	f.emit(Event{LinkIndex: l.Index, Link: true})
}

func (f *FakeHandle) link(name string) *netlink.Dummy {
	for _, l := range f.links {
		if l.Name == name {
			return l
		}
	}
	panic("FakeHandle: no link " + name)
}

// Watch implements Watcher. Events that do not fit the buffer are dropped,
// which a Tracker must survive anyway.
func (f *FakeHandle) Watch(ctx context.Context) (<-chan Event, error) {
	ch := make(chan Event, 256)
	f.mu.Lock()
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		i := slices.Index(f.subs, ch)
		if i >= 0 {
			f.subs = slices.Delete(f.subs, i, i+1)
			close(ch)
		}
	}()
	return ch, nil
}

// EndWatches closes every subscription, as a netlink socket error would.
func (f *FakeHandle) EndWatches() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ch := range f.subs {
		close(ch)
	}
	f.subs = nil
}

func (f *FakeHandle) emit(ev Event) {
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// LinkByName implements Handle.
func (f *FakeHandle) LinkByName(name string) (netlink.Link, error) {
	return f.findLink(func(l *netlink.Dummy) bool { return l.Name == name })
}

// LinkByIndex implements Handle.
func (f *FakeHandle) LinkByIndex(index int) (netlink.Link, error) {
	return f.findLink(func(l *netlink.Dummy) bool { return l.Index == index })
}

// findLink returns a copy of the first link match accepts.
func (f *FakeHandle) findLink(match func(*netlink.Dummy) bool) (netlink.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.links {
		if match(l) {
			c := *l
			return &c, nil
		}
	}
	return nil, netlink.LinkNotFoundError{}
}

// AddrList implements Handle.
func (f *FakeHandle) AddrList(link netlink.Link, family int) ([]netlink.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["AddrList"]++
	return slices.Clone(f.addrs[link.Attrs().Index]), nil
}

// AddrAdd implements Handle: tentative unless IFA_F_NODAD.
func (f *FakeHandle) AddrAdd(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, p, i := f.addrCall("AddrAdd", link, addr)
	if i >= 0 {
		return fmt.Errorf("fake AddrAdd %s: %w", p, syscall.EEXIST)
	}
	flags := unix.IFA_F_PERMANENT
	if addr.Flags&unix.IFA_F_NODAD == 0 {
		flags |= unix.IFA_F_TENTATIVE
	} else {
		flags |= unix.IFA_F_NODAD
	}
	f.addrs[idx] = append(f.addrs[idx], netlink.Addr{IPNet: ipNet(p), Flags: flags, LinkIndex: idx,
		PreferedLft: addr.PreferedLft, ValidLft: addr.ValidLft})
	f.emit(Event{LinkIndex: idx, Address: p, Flags: flags})
	return nil
}

// AddrDel implements Handle.
func (f *FakeHandle) AddrDel(link netlink.Link, addr *netlink.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx, p, i := f.addrCall("AddrDel", link, addr)
	if i < 0 {
		return fmt.Errorf("fake AddrDel %s: %w", p, syscall.EADDRNOTAVAIL)
	}
	f.addrs[idx] = slices.Delete(f.addrs[idx], i, i+1)
	f.emit(Event{LinkIndex: idx, Address: p, Deleted: true})
	return nil
}

// addrCall counts a call of the Handle method named call and returns the
// link's index, addr's prefix and where the link has that address (-1:
// nowhere). f.mu is held.
func (f *FakeHandle) addrCall(call string, link netlink.Link, addr *netlink.Addr) (idx int, p netip.Prefix, i int) {
	f.Calls[call]++
	idx = link.Attrs().Index
	p, _ = prefixOf(addr.IPNet)
	return idx, p, f.find(idx, p.Addr())
}

func (f *FakeHandle) find(idx int, a netip.Addr) int {
	return slices.IndexFunc(f.addrs[idx], func(x netlink.Addr) bool {
		p, _ := prefixOf(x.IPNet)
		return p.Addr() == a
	})
}

// PutAddr puts an address with the given IFA_F_* flags on a link, as the
// kernel (SLAAC, another tool) would, replacing one that is there.
func (f *FakeHandle) PutAddr(name string, p netip.Prefix, flags int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.link(name).Index
	if i := f.find(idx, p.Addr()); i >= 0 {
		f.addrs[idx] = slices.Delete(f.addrs[idx], i, i+1)
	}
	f.addrs[idx] = append(f.addrs[idx], netlink.Addr{IPNet: ipNet(p), Flags: flags, LinkIndex: idx})
	f.emit(Event{LinkIndex: idx, Address: p, Flags: flags})
}

// RemoveAddr removes an address behind the Tracker's back.
func (f *FakeHandle) RemoveAddr(name string, a netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.link(name).Index
	if i := f.find(idx, a); i >= 0 {
		p, _ := prefixOf(f.addrs[idx][i].IPNet)
		f.addrs[idx] = slices.Delete(f.addrs[idx], i, i+1)
		f.emit(Event{LinkIndex: idx, Address: p, Deleted: true})
	}
}

// FinishDAD ends DAD of a tentative address: ok clears IFA_F_TENTATIVE,
// otherwise the address gets IFA_F_DADFAILED (and stays tentative, as in the
// kernel). It reports whether the address was there.
func (f *FakeHandle) FinishDAD(name string, a netip.Addr, ok bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := f.link(name).Index
	i := f.find(idx, a)
	if i < 0 {
		return false
	}
	x := &f.addrs[idx][i]
	if ok {
		x.Flags &^= unix.IFA_F_TENTATIVE
	} else {
		x.Flags |= unix.IFA_F_DADFAILED
	}
	p, _ := prefixOf(x.IPNet)
	f.emit(Event{LinkIndex: idx, Address: p, Flags: x.Flags})
	return true
}

// Lifetimes returns the preferred and valid lifetimes (seconds, 0 =
// forever) an address was last given.
func (f *FakeHandle) Lifetimes(name string, a netip.Addr) (preferred, valid int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(f.link(name).Index, a)
	if i < 0 {
		return 0, 0, false
	}
	x := f.addrs[f.link(name).Index][i]
	return x.PreferedLft, x.ValidLft, true
}

// Addrs returns the addresses of a link with their state, sorted.
func (f *FakeHandle) Addrs(name string) map[netip.Prefix]AddrState {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[netip.Prefix]AddrState{}
	for _, x := range f.addrs[f.link(name).Index] {
		p, _ := prefixOf(x.IPNet)
		out[p] = stateOf(x.Flags)
	}
	return out
}

// RouteReplace implements Handle: keyed by table and destination.
func (f *FakeHandle) RouteReplace(route *netlink.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["RouteReplace"]++
	r := inMain(*route)
	if i := f.routeIndex(r); i >= 0 {
		f.routes[i] = r
		return nil
	}
	f.routes = append(f.routes, r)
	return nil
}

// inMain is r with table 0 read as main, as the kernel does.
func inMain(r netlink.Route) netlink.Route {
	if r.Table == 0 {
		r.Table = unix.RT_TABLE_MAIN
	}
	return r
}

// routeIndex is the index of the route with r's key in f.routes, or -1.
// f.mu is held.
func (f *FakeHandle) routeIndex(r netlink.Route) int {
	k := routeKeyNL(r)
	return slices.IndexFunc(f.routes, func(x netlink.Route) bool { return routeKeyNL(x) == k })
}

// RouteDel implements Handle.
func (f *FakeHandle) RouteDel(route *netlink.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls["RouteDel"]++
	r := inMain(*route)
	i := f.routeIndex(r)
	if i < 0 {
		return fmt.Errorf("fake RouteDel %s: %w", routeKeyNL(r).dst, syscall.ESRCH)
	}
	f.routes = slices.Delete(f.routes, i, i+1)
	return nil
}

// RouteListFiltered implements Handle for the filters netif uses
// (protocol, table with RT_TABLE_UNSPEC meaning all, output interface);
// without a table filter only the main table is listed, like netlink.
func (f *FakeHandle) RouteListFiltered(family int, filter *netlink.Route, mask uint64) ([]netlink.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []netlink.Route
	for _, r := range f.routes {
		switch {
		case mask&netlink.RT_FILTER_TABLE == 0 && r.Table != unix.RT_TABLE_MAIN:
		case mask&netlink.RT_FILTER_TABLE != 0 && filter.Table != unix.RT_TABLE_UNSPEC && r.Table != filter.Table:
		case mask&netlink.RT_FILTER_PROTOCOL != 0 && r.Protocol != filter.Protocol:
		case mask&netlink.RT_FILTER_OIF != 0 && r.LinkIndex != filter.LinkIndex:
		default:
			out = append(out, r)
		}
	}
	return out, nil
}

// PutRoute adds a route as another party (the kernel, RAs) would.
func (f *FakeHandle) PutRoute(r netlink.Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = append(f.routes, inMain(r))
}

// Routes returns a copy of all routes.
func (f *FakeHandle) Routes() []netlink.Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// FakeSysctls is an in-memory Sysctls: "ifname/key" → value. Get of an
// unset key fails like a missing /proc file.
type FakeSysctls struct {
	mu     sync.Mutex
	Values map[string]string
	// Writes records every Set as "ifname/key=value", in order.
	Writes []string
}

var _ Sysctls = (*FakeSysctls)(nil)

// Get implements Sysctls.
func (s *FakeSysctls) Get(ifname, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.Values[ifname+"/"+key]
	if !ok {
		return "", fmt.Errorf("fake sysctl %s/%s: %w", ifname, key, syscall.ENOENT)
	}
	return v, nil
}

// Set implements Sysctls.
func (s *FakeSysctls) Set(ifname, key, value string) error {
	if _, err := sysctlPath(ifname, key); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Values == nil {
		s.Values = map[string]string{}
	}
	s.Values[ifname+"/"+key] = value
	s.Writes = append(s.Writes, ifname+"/"+key+"="+value)
	return nil
}

// Snapshot returns a copy of the writes so far.
func (s *FakeSysctls) Snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.Writes)
}
