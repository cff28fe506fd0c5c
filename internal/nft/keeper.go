package nft

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// A Keeper keeps one table in the kernel as its owner installed it: it runs the owner's
// check after every nftables transaction and counts and logs the restores. Safe for
// concurrent use.
type Keeper struct {
	what  string // the table in log messages, e.g. "nat table"
	table string
	log   *slog.Logger
	check func() (restored string, err error)

	mu      sync.Mutex
	monitor MonitorFunc

	restores atomic.Uint64
}

// NewKeeper returns a Keeper for the table named table; what names it in log messages
// ("nat table"). check compares the kernel with what the owner installed and, when they
// differ, restores the table, all under the owner's lock; it returns what was wrong (""
// when nothing was) and an error when the kernel could not be read or the restore failed.
func NewKeeper(what, table string, log *slog.Logger, check func() (restored string, err error)) *Keeper {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Keeper{what: what, table: table, log: log, check: check}
}

// SetMonitor sets where Watch gets change events from (e.g. MonitorIn(nsFd)); nil, the
// default, makes it poll.
func (k *Keeper) SetMonitor(m MonitorFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.monitor = m
}

// Restores is how many times the table was restored.
func (k *Keeper) Restores() uint64 { return k.restores.Load() }

// Restored counts and logs a restore the owner made on its own path, e.g. a Set that
// found the table changed.
func (k *Keeper) Restored(problem string) {
	k.restores.Add(1)
	k.log.Warn(k.what+" restored", "table", k.table, "problem", problem)
}

// Check runs the owner's check once.
func (k *Keeper) Check() error {
	what, err := k.check()
	if what != "" && err == nil {
		k.Restored(what)
	}
	return err
}

// With change events, Watch still checks every monitorBackstop intervals, in case an
// event was lost; monitorSettle lets the events of one burst of transactions arrive
// before the comparison.
const (
	monitorBackstop = 30
	monitorSettle   = 20 * time.Millisecond
)

// Watch runs Check after every nftables transaction (change events), once a burst has
// settled, and every 30 intervals as a backstop; where events are not available, or when
// they stop, it checks every interval (1 s when every <= 0). It returns nil when ctx is
// done.
func (k *Keeper) Watch(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		every = time.Second
	}
	poll := every
	k.mu.Lock()
	monitor := k.monitor
	k.mu.Unlock()
	var events <-chan struct{}
	if monitor != nil {
		ev, stop, err := monitor()
		if err != nil {
			k.log.Warn(k.what+": no nftables change events; checking the table periodically instead", "err", err)
		} else {
			defer stop()
			events = ev
			// With change events a periodic check is only a backstop: an
			// idle router then costs no netlink traffic at all.
			every *= monitorBackstop
		}
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	lost := func() {
		events = nil
		tick.Reset(poll)
		k.log.Warn(k.what + ": nftables change events stopped; checking the table periodically instead")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-events:
			if !ok {
				lost()
				continue
			}
			// A transaction by anyone, ours included: let a burst settle,
			// then compare once.
			settle := time.NewTimer(monitorSettle)
		drain:
			for {
				select {
				case _, ok := <-events:
					if !ok {
						lost()
					}
				case <-settle.C:
					break drain
				case <-ctx.Done():
					settle.Stop()
					return nil
				}
			}
		case <-tick.C:
		}
		if err := k.Check(); err != nil {
			k.log.Error(k.what+" check failed", "table", k.table, "err", err)
		}
	}
}
