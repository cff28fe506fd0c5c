package ha

import (
	"testing"
	"time"
)

// FuzzElection drives three machines on the in-memory link through an
// arbitrary sequence of partitions, crashes, graceful stops, restarts and
// priority changes, then heals everything and checks the outcome VRRP
// promises: exactly one master, and with preemption on and distinct
// priorities, the highest one.
func FuzzElection(f *testing.F) {
	f.Add([]byte{100, 150, 200, 0, 50})
	f.Add([]byte{100, 100, 100, 1, 0, 0, 200, 1, 0, 2, 1, 0, 90, 5, 1})
	f.Add([]byte{254, 1, 128, 3, 0, 0, 255, 4, 2, 7, 5, 0, 0, 40})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 3 {
			return
		}
		prio := func(x byte) uint8 { return x%254 + 1 } // 1..254
		l := newLink(t)
		var ms []*member
		for i, name := range []string{"a", "b", "c"} {
			ms = append(ms, l.add(name, Config{Priority: prio(b[i]), Preempt: true, AdvertInterval: 100 * time.Millisecond}))
		}
		restart := func(mb *member) {
			cfg := mb.m.cfg
			mb.m = NewMachine(cfg, nil)
			l.start(mb)
		}
		for _, mb := range ms {
			l.start(mb)
		}
		ops := b[3:]
		for i := 0; i+1 < len(ops) && i < 200; i += 2 {
			op, arg := ops[i]%6, ops[i+1]
			mb := ms[int(arg)%len(ms)]
			switch op {
			case 0:
				l.runFor(time.Duration(arg) * 10 * time.Millisecond)
			case 1:
				l.partitioned = !l.partitioned
			case 2:
				l.kill(mb)
			case 3:
				if mb.alive {
					l.shutdown(mb)
				}
			case 4:
				if !mb.alive {
					restart(mb)
				}
			case 5:
				if mb.alive {
					l.handle(mb, mb.m.SetPriority(l.now, prio(arg)))
				}
			}
		}
		l.partitioned = false
		for _, mb := range ms {
			if !mb.alive {
				restart(mb)
			}
		}
		l.runFor(10 * time.Second)

		masters := l.masters()
		if len(masters) != 1 {
			t.Fatalf("%d masters after healing: %v", len(masters), masters)
		}
		var best *member
		for _, mb := range ms {
			if best == nil || mb.m.Priority() > best.m.Priority() {
				best = mb
			}
		}
		distinct := true
		for i := range ms {
			for j := range i {
				if ms[i].m.Priority() == ms[j].m.Priority() {
					distinct = false
				}
			}
		}
		if distinct && masters[0] != best.name {
			t.Errorf("master is %s, want %s, the highest priority (%d)", masters[0], best.name, best.m.Priority())
		}
	})
}
