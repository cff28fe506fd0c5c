package daemon

import (
	"sync"

	"github.com/v6edge/v6edge/dhcp6pd"
	"github.com/v6edge/v6edge/dhcp6srv"
	"github.com/v6edge/v6edge/ha"
	"github.com/v6edge/v6edge/internal/plan"
)

// event is what a driver reports to the loop.
type event interface{ isEvent() }

type (
	// leaseEvent: a DHCPv6 client published a new snapshot.
	leaseEvent struct {
		wan  string
		snap dhcp6pd.Snapshot
	}
	// roleEvent: the VRRP node changed role.
	roleEvent struct {
		role plan.Role
		why  string
	}
	// peerLeaseEvent: the master's lease arrived over the sync channel.
	peerLeaseEvent struct{ lease ha.SyncedLease }
	// probeEvent: an uplink probe was answered (ok) or missed.
	probeEvent struct {
		wan string
		ok  bool
	}
	// delegationsEvent: a LAN server's downstream delegations changed.
	delegationsEvent struct {
		lan  string
		dels []dhcp6srv.Delegation
	}
	// linkEvent: some link changed; the loop re-reads the WANs.
	linkEvent struct{}
	// changedEvent: a kernel owner's status changed, or a deadline passed.
	changedEvent struct{}
	// syncTick: time to tell the backup the lease again.
	syncTick struct{}
	// readyEvent: every task reports ready.
	readyEvent struct{}
	// reloadEvent: SIGHUP.
	reloadEvent struct{ done chan error }
	// requestEvent: a control socket command, run by the loop.
	requestEvent struct {
		run  func(d *Daemon) error
		done chan error
	}
)

func (leaseEvent) isEvent()       {}
func (roleEvent) isEvent()        {}
func (peerLeaseEvent) isEvent()   {}
func (probeEvent) isEvent()       {}
func (delegationsEvent) isEvent() {}
func (linkEvent) isEvent()        {}
func (changedEvent) isEvent()     {}
func (syncTick) isEvent()         {}
func (readyEvent) isEvent()       {}
func (reloadEvent) isEvent()      {}
func (requestEvent) isEvent()     {}

// mailbox is the loop's one inbox. post never blocks, so no driver can
// deadlock against a loop that is waiting for it (a LAN server being
// stopped while it reports its delegations); the loop takes every pending
// event at once and applies one pass for the whole burst.
type mailbox struct {
	mu   sync.Mutex
	q    []event
	wake chan struct{}
}

func newMailbox() *mailbox { return &mailbox{wake: make(chan struct{}, 1)} }

func (m *mailbox) post(e event) {
	m.mu.Lock()
	m.q = append(m.q, e)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mailbox) take() []event {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := m.q
	m.q = nil
	return q
}
