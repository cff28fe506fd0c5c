package testbed

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"
)

// benchDump is `tcpdump -n -tt -v` of a renumbering and a restart in the
// lab: dhcpcd renews after Kea forgot its binding and gets the new prefix
// with the old one at lifetime 0, then Rebinds after its restart.
const benchDump = `reading from file x.pcap, link-type EN10MB (Ethernet), snapshot length 262144
1795709936.972867 IP6 (flowlabel 0xc064b, hlim 1, next-header UDP (17) payload length: 163) fe80::5eff:fe00:133.546 > ff02::1:2.547: [udp sum ok] dhcp6 renew (xid=c78828 (client-ID hwaddr type 1 02005e000133) (server-ID hwaddr type 1 a24fc4d1bbd7) (IA_PD IAID:1 T1:0 T2:0 (IA_PD-prefix 2001:db8:200::/56 pltime:3000 vltime:4000)) (option-request opt_82 opt_83) (elapsed-time 0) (vendor-class))
1795709936.973296 IP6 (flowlabel 0x41bd2, hlim 64, next-header UDP (17) payload length: 114) fe80::a04f:c4ff:fed1:bbd7.547 > fe80::5eff:fe00:133.546: [bad udp cksum 0x7bb1 -> 0xf128!] dhcp6 reply (xid=c78828 (client-ID hwaddr type 1 02005e000133) (server-ID hwaddr type 1 a24fc4d1bbd7) (IA_PD IAID:1 T1:1000 T2:1600 (IA_PD-prefix 2001:db8:100::/56 pltime:3000 vltime:4000) (IA_PD-prefix 2001:db8:200::/56 pltime:0 vltime:0)))
1795709938.268871 IP6 (flowlabel 0xc064b, hlim 1, next-header UDP (17) payload length: 149) fe80::5eff:fe00:133.546 > ff02::1:2.547: [udp sum ok] dhcp6 rebind (xid=329d27 (client-ID hwaddr type 1 02005e000133) (IA_PD IAID:1 T1:0 T2:0 (IA_PD-prefix 2001:db8:100::/56 pltime:3000 vltime:4000)) (option-request opt_82 opt_83) (elapsed-time 0) (vendor-class))
1795709938.269307 IP6 (flowlabel 0x41bd2, hlim 64, next-header UDP (17) payload length: 85) fe80::a04f:c4ff:fed1:bbd7.547 > fe80::5eff:fe00:133.546: [bad udp cksum 0x7b94 -> 0x4007!] dhcp6 reply (xid=329d27 (client-ID hwaddr type 1 02005e000133) (server-ID hwaddr type 1 a24fc4d1bbd7) (IA_PD IAID:1 T1:1000 T2:1600 (IA_PD-prefix 2001:db8:100::/56 pltime:3000 vltime:4000)))
1795709938.3 IP6 a line whose time is cut short: dhcp6 reply (xid=1)
`

func TestParseBenchDHCPv6(t *testing.T) {
	at := func(sec, us int64) time.Time { return time.Unix(sec, us*1000) }
	p := netip.MustParsePrefix
	want := []BenchDHCPv6{
		{Time: at(1795709936, 972867), Type: "renew", XID: "c78828", Delegated: []netip.Prefix{p("2001:db8:200::/56")}},
		{Time: at(1795709936, 973296), Type: "reply", XID: "c78828", Delegated: []netip.Prefix{p("2001:db8:100::/56")}},
		{Time: at(1795709938, 268871), Type: "rebind", XID: "329d27", Delegated: []netip.Prefix{p("2001:db8:100::/56")}},
		{Time: at(1795709938, 269307), Type: "reply", XID: "329d27", Delegated: []netip.Prefix{p("2001:db8:100::/56")}},
	}
	if diff := cmp.Diff(want, ParseBenchDHCPv6(benchDump), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseBenchDHCPv6 (-want +got):\n%s", diff)
	}
}

func TestBenchExchangeAfter(t *testing.T) {
	msgs := ParseBenchDHCPv6(benchDump)
	at := func(sec, us int64) time.Time { return time.Unix(sec, us*1000) }
	tests := []struct {
		name   string
		from   time.Time
		within netip.Prefix
		want   BenchExchange
	}{
		{"a Reply that moves to the new pool ends the renumbering", at(1795709936, 0), netip.MustParsePrefix("2001:db8:100::/40"),
			BenchExchange{OK: true, ToReply: 973296 * time.Microsecond, Client: []string{"Renew"}, Prefix: netip.MustParsePrefix("2001:db8:100::/56")}},
		{"a prefix at lifetime 0 does not count as delegated", at(1795709936, 0), netip.MustParsePrefix("2001:db8:200::/40"),
			BenchExchange{Client: []string{"Renew", "Rebind"}}},
		{"the first successful Reply after a restart names the exchange", at(1795709938, 0), netip.Prefix{},
			BenchExchange{OK: true, ToReply: 269307 * time.Microsecond, Client: []string{"Rebind"}, Prefix: netip.MustParsePrefix("2001:db8:100::/56")}},
		{"messages before the starting point are ignored", at(1795709939, 0), netip.Prefix{}, BenchExchange{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BenchExchangeAfter(msgs, tt.from, tt.within)
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("BenchExchangeAfter (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBenchExchangeAfterFoldsRetransmissions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	msgs := []BenchDHCPv6{
		{Time: t0.Add(1), Type: "solicit"}, {Time: t0.Add(2), Type: "solicit"}, {Time: t0.Add(3), Type: "advertise"},
		{Time: t0.Add(4), Type: "request"}, {Time: t0.Add(5), Type: "reply", Delegated: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/56")}},
	}
	got := BenchExchangeAfter(msgs, t0, netip.Prefix{})
	if diff := cmp.Diff([]string{"Solicit", "Request"}, got.Client); diff != "" || !got.OK || got.ToReply != 5 {
		t.Errorf("got %+v; client messages (-want +got):\n%s", got, diff)
	}
}

func TestBenchNetmapTo(t *testing.T) {
	pool := netip.MustParsePrefix("2001:db8:200::/40")
	a16 := func(s string) []byte { b := netip.MustParseAddr(s).As16(); return b[:] }
	snat := func(to string) []expr.Any {
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: a16(to)},
			&expr.Immediate{Register: 2, Data: a16("2001:db8:2ff:ffff:ffff:ffff:ffff:ffff")},
			&expr.NAT{Type: expr.NATTypeSourceNAT, RegAddrMin: 1, RegAddrMax: 2, Prefix: true},
		}
	}
	dnat := func(match []byte) []expr.Any {
		return []expr.Any{
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("wan0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: uint32(len(match))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: match},
			&expr.Immediate{Register: 1, Data: a16("fd00:aaaa:bbbb:cc00::")},
			&expr.NAT{Type: expr.NATTypeDestNAT, RegAddrMin: 1, RegAddrMax: 2, Prefix: true},
		}
	}
	tests := []struct {
		name       string
		exprs      []expr.Any
		snat, dnat bool
	}{
		{"a prefix SNAT to a prefix in the pool counts", snat("2001:db8:200::"), true, false},
		{"a prefix SNAT to the old pool does not", snat("2001:db8:100::"), false, false},
		{"a DNAT matching the /56's seven bytes counts", dnat(a16("2001:db8:200::")[:7]), false, true},
		{"a DNAT matching a whole masked address counts", dnat(a16("2001:db8:200::")), false, true},
		{"a DNAT matching fewer bytes than the pool's length does not", dnat(a16("2001:db8:200::")[:4]), false, false},
		{"a DNAT of the old prefix does not", dnat(a16("2001:db8:100::")[:7]), false, false},
		{"a plain SNAT (no prefix flag) does not", []expr.Any{&expr.Immediate{Register: 1, Data: a16("2001:db8:200::")}, &expr.NAT{Type: expr.NATTypeSourceNAT}}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, d := BenchNetmapTo(tt.exprs, pool)
			if s != tt.snat || d != tt.dnat {
				t.Errorf("BenchNetmapTo = snat %v, dnat %v; want %v, %v", s, d, tt.snat, tt.dnat)
			}
		})
	}
}

func TestParseBenchProcStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    BenchProcCPU
		wantErr bool
	}{
		{"the four times are summed and the start time kept",
			"4242 (dhcpcd) S 1 4242 4242 0 -1 4194560 300 0 0 0 7 5 2 1 20 0 1 0 123456 9000000 400 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
			BenchProcCPU{Start: 123456, Ticks: 15}, false},
		{"a command name with spaces and parentheses is skipped whole",
			"77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 1 2 3 4 20 0 1 0 99 0 0 0",
			BenchProcCPU{Start: 99, Ticks: 10}, false},
		{"a cut-off line is an error", "77 (v6edge) S 1 77 77 0", BenchProcCPU{}, true},
		{"no command name is an error", "77 v6edge S", BenchProcCPU{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBenchProcStat([]byte(tt.stat))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseBenchProcStat = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if got := ParseBenchSchedstat([]byte("106119283 125181091 430\n")); got != 106119283 {
		t.Errorf("ParseBenchSchedstat = %d, want 106119283", got)
	}
}

func TestBenchCPUDelta(t *testing.T) {
	before := map[int]BenchProcCPU{
		10: {Start: 5, Ticks: 100, Run: 1000},
		11: {Start: 6, Ticks: 50, Run: 500},
		12: {Start: 7, Ticks: 9, Run: 90}, // exits in the window
	}
	after := map[int]BenchProcCPU{
		10: {Start: 5, Ticks: 103, Run: 4000}, // 3 ticks, 3 µs
		11: {Start: 8, Ticks: 2, Run: 200},    // pid reused: all of it
		13: {Start: 9, Ticks: 1, Run: 100},    // new: all of it
	}
	stat, run := BenchCPUDelta(before, after)
	if stat != 60*time.Millisecond || run != 3300*time.Nanosecond {
		t.Errorf("BenchCPUDelta = %v, %v; want 60ms, 3.3µs", stat, run)
	}
}

func TestWriteBenchOpsTable(t *testing.T) {
	ms := time.Millisecond
	p := netip.MustParsePrefix("2001:db8:200::/56")
	ok := func(to, nat time.Duration, client ...string) BenchExchange {
		return BenchExchange{OK: true, ToReply: to, ReplyToNAT: nat, Client: client, Prefix: p}
	}
	results := map[string][]BenchOps{
		SetupV6edge: {
			{IdleWindow: 10 * time.Second, IdleCPU: 10 * ms, IdleRun: 2 * ms, Renumber: ok(5*ms, 2*ms, "Renew"), Restart: ok(10*ms, 0, "Rebind"), Kept: true},
			{IdleWindow: 10 * time.Second, IdleCPU: 10 * ms, IdleRun: 2 * ms, Renumber: ok(5*ms, 2*ms, "Renew"), Restart: ok(10*ms, 0, "Rebind"), Kept: true},
		},
		SetupIncumbent: {
			{IdleWindow: 10 * time.Second, IdleCPU: 0, IdleRun: 1 * ms, Renumber: ok(6*ms, 20*ms, "Renew"), Restart: ok(1000*ms, 0, "Rebind"), Kept: true},
			{IdleWindow: 10 * time.Second, IdleCPU: 0, IdleRun: 1 * ms, Renumber: BenchExchange{Client: []string{"Renew"}}, Restart: ok(1000*ms, 0, "Solicit", "Request")},
		},
	}
	var b bytes.Buffer
	WriteBenchOpsTable(&b, results, 2)
	for _, want := range []string{
		"| after start-up, median of 2 | v6edge | dhcpcd+hook+radvd | incumbent ÷ v6edge (> 1: v6edge better) |",
		"| renumbering: Reply with the new prefix on the wire → new NETMAP rules committed in the kernel | 2.0 ms | 20.0 ms (1 of 2 runs never got there) | 10.0× |",
		"| renumbering: client messages up to that Reply | Renew 2/2 | Renew 1/2, no Reply 1/2 | |",
		"| 10.0 ms | 1000.0 ms | 100× |",
		"| Rebind, same prefix 2/2 | Rebind, same prefix 1/2, Solicit → Request, new prefix 1/2 | |",
		"over 10s after serving, per minute | 60 ms/min | 0 ms/min | n/a |",
		"| 12.00 ms/min | 6.00 ms/min | 0.5× |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
