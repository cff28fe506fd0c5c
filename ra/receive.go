package ra

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// Errors for messages that fail the validity checks of RFC 4861 §6.1. They
// are silently discarded by the Advertiser; the reasons exist for tests and
// debugging.
var (
	ErrHopLimit     = errors.New("ra: hop limit is not 255")
	ErrICMPCode     = errors.New("ra: ICMP code is not 0")
	ErrTooShort     = errors.New("ra: ICMP length too short")
	ErrSourceLLA    = errors.New("ra: router solicitation from the unspecified address carries a source link-layer address option")
	ErrNotLinkLocal = errors.New("ra: router advertisement source is not link-local")
	ErrNotNDP       = errors.New("ra: not a router solicitation or advertisement")
)

// Lengths of the fixed parts of the ICMPv6 messages, RFC 4861 §4.1 and §4.2.
const (
	rsMinLen = 8
	raMinLen = 16
)

// ParseMessage validates and parses one received ICMPv6 message (b starts
// at the ICMPv6 type) that arrived from src with control message cm. It
// returns an *ndp.RouterSolicitation or an *ndp.RouterAdvertisement that
// passed the checks of RFC 4861 §6.1.1 or §6.1.2, or an error. It never
// panics, whatever b holds.
func ParseMessage(b []byte, cm *ipv6.ControlMessage, src netip.Addr) (ndp.Message, error) {
	if len(b) < 4 {
		return nil, ErrTooShort
	}
	switch ipv6.ICMPType(b[0]) {
	case ipv6.ICMPTypeRouterSolicitation:
		if len(b) < rsMinLen {
			return nil, ErrTooShort
		}
	case ipv6.ICMPTypeRouterAdvertisement:
		if len(b) < raMinLen {
			return nil, ErrTooShort
		}
	default:
		return nil, ErrNotNDP
	}
	// §6.1.1/§6.1.2: "ICMP Code is 0."
	if b[1] != 0 {
		return nil, ErrICMPCode
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		return nil, fmt.Errorf("ra: parsing %s: %w", ipv6.ICMPType(b[0]), err)
	}
	if err := Validate(m, cm, src); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate applies the RFC 4861 §6.1.1 (RS) and §6.1.2 (RA) checks that
// remain after parsing: the hop limit (from the control message; the kernel
// only reports it when IPV6_RECVHOPLIMIT is on), and the rules about source
// addresses. A nil cm fails the hop limit check: without it we cannot tell
// an on-link sender from a remote one.
func Validate(m ndp.Message, cm *ipv6.ControlMessage, src netip.Addr) error {
	// "The IP Hop Limit field has a value of 255, i.e., the packet could
	// not possibly have been forwarded by a router."
	if cm == nil || cm.HopLimit != ndp.HopLimit {
		return ErrHopLimit
	}
	switch m := m.(type) {
	case *ndp.RouterSolicitation:
		// "If the IP source address is the unspecified address, there is no
		// source link-layer address option in the message."
		if !src.IsValid() || src.IsUnspecified() {
			for _, o := range m.Options {
				if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == ndp.Source {
					return ErrSourceLLA
				}
			}
		}
		return nil
	case *ndp.RouterAdvertisement:
		// "IP Source Address is a link-local address."
		if !src.IsLinkLocalUnicast() {
			return ErrNotLinkLocal
		}
		return nil
	}
	return ErrNotNDP
}

// lifetimeSlack is how far apart two decrementing lifetimes may end and
// still count as consistent: our own lifetimes are truncated to whole
// seconds and the RA spent some time on the wire.
const lifetimeSlack = 2 * time.Second

// Inconsistencies compares an RA received at now from another router on
// the link with what cfg advertises, following RFC 4861 §6.2.7, and returns
// one sentence per difference (nil when consistent). Values that either side
// leaves unspecified (0) are not compared, as the RFC says.
//
// Prefix lifetimes: when ours are capped by a lease (they count down in
// real time), the RFC asks to compare the instants at which they run out
// rather than the values; otherwise the values are compared as they are.
func Inconsistencies(cfg Config, now time.Time, ra *ndp.RouterAdvertisement) []string {
	var out []string
	hop := cfg.HopLimit
	if hop == 0 {
		hop = DefaultHopLimit
	}
	if ra.CurrentHopLimit != 0 && ra.CurrentHopLimit != hop {
		out = append(out, fmt.Sprintf("cur hop limit %d, we advertise %d", ra.CurrentHopLimit, hop))
	}
	if ra.ManagedConfiguration != cfg.Managed {
		out = append(out, fmt.Sprintf("managed flag %s, we advertise %s", onOff(ra.ManagedConfiguration), onOff(cfg.Managed)))
	}
	if ra.OtherConfiguration != cfg.Other {
		out = append(out, fmt.Sprintf("other flag %s, we advertise %s", onOff(ra.OtherConfiguration), onOff(cfg.Other)))
	}
	if ra.ReachableTime != 0 && cfg.ReachableTime != 0 && ra.ReachableTime != cfg.ReachableTime.Truncate(time.Millisecond) {
		out = append(out, fmt.Sprintf("reachable time %s, we advertise %s", ra.ReachableTime, cfg.ReachableTime))
	}
	if ra.RetransmitTimer != 0 && cfg.RetransTimer != 0 && ra.RetransmitTimer != cfg.RetransTimer.Truncate(time.Millisecond) {
		out = append(out, fmt.Sprintf("retrans timer %s, we advertise %s", ra.RetransmitTimer, cfg.RetransTimer))
	}
	ours := make(map[netip.Prefix]Prefix, len(cfg.Prefixes))
	for _, p := range cfg.Prefixes {
		ours[p.Prefix.Masked()] = p
	}
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.MTU:
			if cfg.MTU != 0 && int64(o.MTU) != int64(cfg.MTU) {
				out = append(out, fmt.Sprintf("mtu %d, we advertise %d", o.MTU, cfg.MTU))
			}
		case *ndp.PrefixInformation:
			p, ok := ours[netip.PrefixFrom(o.Prefix, int(o.PrefixLength)).Masked()]
			if !ok {
				continue
			}
			pref, valid := PrefixLifetimes(p, now)
			if s := compareLifetime("valid", p.Prefix, o.ValidLifetime, valid, !p.ValidUntil.IsZero()); s != "" {
				out = append(out, s)
			}
			if s := compareLifetime("preferred", p.Prefix, o.PreferredLifetime, pref, !p.PreferredUntil.IsZero()); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// compareLifetime compares a received lifetime with ours. For a
// decrementing lifetime of ours both were measured at the same instant, so
// comparing the values within lifetimeSlack is comparing the expiry times.
// Infinity is only consistent with itself.
func compareLifetime(what string, p netip.Prefix, theirs, ours time.Duration, decrementing bool) string {
	consistent := theirs == ours
	if decrementing && theirs != ndp.Infinity {
		d := theirs - ours
		consistent = d <= lifetimeSlack && d >= -lifetimeSlack
	}
	if consistent {
		return ""
	}
	return fmt.Sprintf("prefix %s %s lifetime %s, we advertise %s", p.Masked(), what, theirs, ours)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
