package ctflush

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/ti-mo/conntrack"
)

func flow(src, dst string, mark uint32) conntrack.Flow {
	var f conntrack.Flow
	f.TupleOrig.IP = conntrack.IPTuple{SourceAddress: netip.MustParseAddr(src), DestinationAddress: netip.MustParseAddr(dst)}
	f.TupleReply.IP = conntrack.IPTuple{SourceAddress: netip.MustParseAddr(dst), DestinationAddress: netip.MustParseAddr(src)}
	f.Mark = mark
	return f
}

func TestSelects(t *testing.T) {
	toDoc := func(f conntrack.Flow) bool {
		return netip.MustParsePrefix("2001:db8::/32").Contains(f.TupleOrig.IP.DestinationAddress)
	}
	tests := []struct {
		name string
		s    Select
		f    conntrack.Flow
		want bool
	}{
		{"the mark", Select{Mark: 7}, flow("fd00::1", "2001:db8::1", 7), true},
		{"another mark", Select{Mark: 7}, flow("fd00::1", "2001:db8::1", 8), false},
		{"unmarked", Select{Mark: 7}, flow("fd00::1", "2001:db8::1", 0), false},
		{"a match", Select{Match: toDoc}, flow("fd00::1", "2001:db8::1", 0), true},
		{"no match", Select{Match: toDoc}, flow("fd00::1", "2001:db9::1", 0), false},
		{"mark and match", Select{Mark: 7, Match: toDoc}, flow("fd00::1", "2001:db8::1", 7), true},
		{"the match but another mark", Select{Mark: 7, Match: toDoc}, flow("fd00::1", "2001:db8::1", 8), false},
		{"IPv4, with the mark", Select{Mark: 7}, flow("192.0.2.1", "198.51.100.1", 7), false},
		{"IPv4 mapped", Select{Mark: 7}, flow("::ffff:192.0.2.1", "::ffff:198.51.100.1", 7), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.selects(tc.f); got != tc.want {
				t.Errorf("selects = %v, want %v", got, tc.want)
			}
		})
	}
}

type fakeDeleter struct {
	errs    map[netip.Addr]error
	deleted []netip.Addr
}

func (d *fakeDeleter) Delete(f conntrack.Flow) error {
	if err := d.errs[f.TupleOrig.IP.SourceAddress]; err != nil {
		return err
	}
	d.deleted = append(d.deleted, f.TupleOrig.IP.SourceAddress)
	return nil
}

func TestDeleteFlows(t *testing.T) {
	d := &fakeDeleter{errs: map[netip.Addr]error{
		netip.MustParseAddr("fd00::2"): syscall.ENOENT, // expired meanwhile
		netip.MustParseAddr("fd00::3"): syscall.EPERM,
	}}
	flows := []conntrack.Flow{
		flow("fd00::1", "2001:db8::1", 7), flow("fd00::2", "2001:db8::1", 7), flow("fd00::3", "2001:db8::1", 7),
		flow("fd00::4", "2001:db8::1", 8), flow("fd00::5", "2001:db8::1", 7),
	}
	n, err := deleteFlows(d, flows, Select{Mark: 7})
	if n != 2 || len(d.deleted) != 2 {
		t.Errorf("deleted %d (%v), want 2: fd00::1 and fd00::5", n, d.deleted)
	}
	if !errors.Is(err, syscall.EPERM) {
		t.Errorf("err = %v, want it to wrap EPERM", err)
	}
}

func TestDeleteRefusesToDeleteEverything(t *testing.T) {
	if _, err := Delete(-1, Select{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("Delete(Select{}) = %v, want ErrEmpty", err)
	}
}
