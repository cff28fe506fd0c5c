package main

import (
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv6"

	"github.com/v6edge/v6edge/dhcp6pd"
)

// countingConn counts the DHCPv6 messages a client sends and receives by
// type, for the metrics. It reads only the first byte (the message type), so
// it adds nothing to the parse path that validation guards.
type countingConn struct {
	dhcp6pd.Conn
	d     *daemon
	iface string
}

func (c *countingConn) WriteTo(b []byte, to netip.AddrPort) error {
	err := c.Conn.WriteTo(b, to)
	if err == nil && len(b) > 0 {
		c.d.countMessage(c.iface, "sent", dhcpv6.MessageType(b[0]).String())
	}
	return err
}

func (c *countingConn) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.Conn.ReadFrom(b)
	if err == nil && n > 0 {
		c.d.countMessage(c.iface, "received", dhcpv6.MessageType(b[0]).String())
	}
	return n, from, err
}

func (d *daemon) countMessage(iface, kind, typ string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.messages[iface]
	if m == nil {
		m = map[string]uint64{}
		d.messages[iface] = m
	}
	m[kind+":"+typ]++
}
