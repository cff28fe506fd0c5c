package daemon

import (
	"errors"

	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/plan"
)

var _ control.Handler = (*Daemon)(nil)

// Renew implements control.Handler.
func (d *Daemon) Renew() error {
	return d.request(func(d *Daemon) error {
		for _, c := range d.clients {
			c.Renew()
		}
		return nil
	})
}

// Release implements control.Handler.
func (d *Daemon) Release() error {
	return d.request(func(d *Daemon) error {
		if d.st.cfg.HA != nil {
			return errors.New("release refused: in an HA pair a release would renumber the peer too")
		}
		for _, c := range d.clients {
			c.Release()
		}
		return nil
	})
}

// SetRole implements control.Handler for ha.mode = "external".
func (d *Daemon) SetRole(role string) error {
	r := plan.Backup
	switch role {
	case "master":
		r = plan.Master
	case "fault":
		r = plan.Fault
	case "backup":
	default:
		return errors.New("role must be master, backup or fault")
	}
	return d.request(func(d *Daemon) error {
		if d.st.cfg.HA == nil || d.st.cfg.HA.Mode != "external" {
			return errors.New(`roles are set from outside only with [ha] mode = "external"`)
		}
		d.setRole(r, "set by `v6edge ha "+role+"`")
		return nil
	})
}
