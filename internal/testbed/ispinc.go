package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// IncumbentConf varies the incumbent's dhcpcd.conf for the ISP tests
// (issue 15): the setup of RunIncumbent (hook, radvd, sysctls, LAN
// address), with a dhcpcd.conf that asks for what an operator asks for.
type IncumbentConf struct {
	// Hint is the prefix length dhcpcd asks for (ia_pd 1/::/Hint) and that
	// the hook's operator expects; default 56, what RunIncumbent asks for
	// with the default lab.
	Hint int
	// IAPD replaces the whole ia_pd line, e.g. "ia_pd 1/::/56 wan0/0/64";
	// empty: "ia_pd 1/::/<Hint> nosuch0/0/<Hint>" as RunIncumbent has it
	// (nothing assigned to any interface of the router).
	IAPD string
	// Extra lines at the end of the wan0 interface block, e.g. "ia_na 1"
	// or "option dhcp6_name_servers".
	Extra []string
}

// ISPIncumbent is an incumbent run by RunIncumbentConf.
type ISPIncumbent struct {
	*Incumbent
	Hook    string    // the hook script; each run writes its environment to Hook.<reason>.env
	Conf    string    // dhcpcd.conf's text
	Started time.Time // when dhcpcd was started
}

// RunIncumbentConf starts the incumbent (see RunIncumbent) with the
// dhcpcd.conf c describes.
func (l *Lab) RunIncumbentConf(ctx context.Context, c IncumbentConf) (*ISPIncumbent, error) {
	if c.Hint == 0 {
		c.Hint = 56
	}
	n := l.next()
	hook, err := l.prepareIncumbent(ctx, fmt.Sprintf("isp-incumbent-hook-%d.sh", n))
	if err != nil {
		return nil, err
	}
	conf := ispDhcpcdConf(hook, l.opts.RapidCommit, c)
	radvdConf := l.path(fmt.Sprintf("isp-incumbent-radvd-%d.conf", n))
	if err := os.WriteFile(radvdConf, []byte(incumbentRadvdConf("")), 0o644); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	name := fmt.Sprintf("isp-incumbent-dhcpcd-%d", n)
	started := time.Now()
	d, err := l.StartDhcpcd(ctx, name, conf, "-6", "-B", WANIface)
	if err != nil {
		return nil, err
	}
	r, err := l.Start(ctx, l.Router, fmt.Sprintf("isp-incumbent-radvd-%d", n), "radvd", "-n", "-m", "stderr", "-C", radvdConf,
		"-p", l.path(fmt.Sprintf("isp-incumbent-radvd-%d.pid", n)))
	if err != nil {
		_ = d.Stop()
		return nil, err
	}
	inc := &Incumbent{Dhcpcd: d, Radvd: r, lab: l, name: name, conf: conf}
	return &ISPIncumbent{Incumbent: inc, Hook: hook, Conf: conf, Started: started}, nil
}

// ispDhcpcdConf is the incumbent's dhcpcd.conf (incumbentDhcpcdConf) with
// c's ia_pd line and extra lines.
func ispDhcpcdConf(hook string, rapidCommit bool, c IncumbentConf) string {
	conf := incumbentDhcpcdConf("incumbent against an ISP variety", hook, rapidCommit, c.Hint)
	if c.IAPD != "" {
		def := fmt.Sprintf("\tia_pd 1/::/%d nosuch0/0/%d\n", c.Hint, c.Hint)
		conf = strings.Replace(conf, def, "\t"+c.IAPD+"\n", 1)
	}
	for _, e := range c.Extra {
		conf += "\t" + e + "\n"
	}
	return conf
}

// HookRun is one reason the hook ran for, with the environment of its
// last run and when that was.
type HookRun struct {
	Reason string
	At     time.Time
	Env    map[string]string
}

// HookEnv returns the environment of the hook's last run for reason (e.g.
// "BOUND6"), or ok false if it has not run for it.
func (i *ISPIncumbent) HookEnv(reason string) (run HookRun, ok bool, err error) {
	f := i.Hook + "." + reason + ".env"
	fi, err := os.Stat(f)
	if errors.Is(err, os.ErrNotExist) {
		return HookRun{}, false, nil
	}
	if err != nil {
		return HookRun{}, false, fmt.Errorf("lab: %w", err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return HookRun{}, false, fmt.Errorf("lab: %w", err)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" && !strings.ContainsAny(k, " \t") {
			env[k] = v
		}
	}
	if env["reason"] != reason {
		// The hook's `env > file` creates the file before it writes it:
		// an empty (or partly written) file is a run still under way.
		return HookRun{}, false, nil
	}
	return HookRun{Reason: reason, At: fi.ModTime(), Env: env}, true, nil
}

// HookReasons lists the reasons the hook has run for so far.
func (i *ISPIncumbent) HookReasons() ([]string, error) {
	files, err := filepath.Glob(i.Hook + ".*.env")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	var reasons []string
	for _, f := range files {
		reasons = append(reasons, strings.TrimSuffix(strings.TrimPrefix(f, i.Hook+"."), ".env"))
	}
	return reasons, nil
}

// WaitHook waits until the hook has run for one of reasons and returns
// that run.
func (i *ISPIncumbent) WaitHook(ctx context.Context, timeout time.Duration, reasons ...string) (HookRun, error) {
	var got HookRun
	err := i.lab.WaitFor(ctx, timeout, "the dhcpcd hook to run for "+strings.Join(reasons, " or "), func() (bool, error) {
		for _, r := range reasons {
			run, ok, err := i.HookEnv(r)
			if err != nil || ok {
				got = run
				return ok, err
			}
		}
		return false, nil
	})
	return got, err
}
