package daemon

import (
	"context"

	"github.com/v6edge/v6edge/internal/netif"
)

// linkDriver reports link changes from the shared subscription to the loop.
type linkDriver struct {
	w    netif.Watcher
	post func(event)
}

func (l *linkDriver) String() string { return "link watcher" }

func (l *linkDriver) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		events, err := l.w.Watch(ctx)
		if err != nil {
			return err
		}
		for ev := range events {
			if ev.Link {
				l.post(linkEvent{})
			}
		}
		// The subscription started over: something may have been missed.
		l.post(linkEvent{})
	}
	return nil
}

// solicitTask runs the WAN's Router Solicitations once at start, and says
// when it is done: the default route it brought may let the LANs' RAs name
// this router as their default router.
type solicitTask struct {
	iface   string
	solicit func(ctx context.Context, iface string)
	post    func(event)
}

func (s *solicitTask) String() string { return "router solicitation " + s.iface }

func (s *solicitTask) Run(ctx context.Context) error {
	s.solicit(ctx, s.iface)
	s.post(changedEvent{})
	return nil
}
