// Command v6edge turns a Linux box into an IPv6 edge router: DHCPv6 prefix
// delegation upstream, Router Advertisements on each LAN, a 1:1 NETMAP between
// the LAN's stable ULA prefix and the delegated prefix, and an optional VRRPv3
// active/standby pair. See README.md and SPEC.md.
//
// main is the only place that exits the process.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/control"
	"github.com/v6edge/v6edge/internal/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const (
	defaultConfig = "/etc/v6edge/v6edge.toml"
	defaultSocket = "/run/v6edge/v6edge.sock"
)

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: v6edge <command> [flags]

commands:
  run      [-config PATH] [-log-format text|json] [-log-level LEVEL]   run the daemon in the foreground
  check    [-config PATH]                                              validate a config (exit 1 on any error)
  status   [-socket PATH] [-json]                                      show the daemon's state (exit 0 healthy, 1 problems, 2 unreachable)
  renew    [-socket PATH]                                              renew the delegated prefix now
  release  [-socket PATH]                                              release the delegated prefix
  ha       master|backup|fault [-socket PATH]                          set the HA role (ha.mode = "external")
  import   [-dhcpcd F] [-hook F] [-radvd F] [-keepalived F] [-keep-keepalived] [-o F]   write a v6edge config from dhcpcd + hook + radvd + keepalived (exit 1 if something was left out)
  version                                                              print the version
`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check":
		return cmdCheck(args, stdout, stderr)
	case "status":
		return cmdStatus(args, stdout, stderr)
	case "renew", "release":
		return cmdSimple(cmd, args, stdout, stderr)
	case "ha":
		return cmdHA(args, stdout, stderr)
	case "import":
		return cmdImport(args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "v6edge", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "v6edge: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("v6edge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	path := fs.String("config", defaultConfig, "config file")
	format := fs.String("log-format", "text", "log format: text or json")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "v6edge: -log-level: %v\n", err)
		return 2
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		fmt.Fprintf(stderr, "v6edge: -log-format must be text or json, not %q\n", *format)
		return 2
	}
	log := slog.New(h)

	cfg, err := configs.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d, err := daemon.New(daemon.Options{
		Path: *path, Config: cfg, Log: log, Version: version,
		Kernel: daemon.Linux, Drivers: daemon.LinuxDrivers(log),
	})
	if err != nil {
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = d.Reload() // the daemon logs the outcome
			}
		}
	}()
	if err := d.Run(ctx); err != nil {
		log.Error("v6edge stopped with an error", "err", err)
		return 1
	}
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", stderr)
	path := fs.String("config", defaultConfig, "config file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := configs.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

func callDaemon(socket string, req control.Request, stderr io.Writer) (*control.Response, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, socket, req)
	if err != nil {
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
		return nil, 2
	}
	if !resp.OK {
		fmt.Fprintf(stderr, "v6edge: %s\n", resp.Error)
		return resp, 1
	}
	return resp, 0
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("status", stderr)
	socket := fs.String("socket", defaultSocket, "control socket")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	resp, code := callDaemon(*socket, control.Request{Command: "status"}, stderr)
	if code != 0 {
		return code
	}
	st := resp.Status
	if st == nil {
		fmt.Fprintln(stderr, "v6edge: daemon sent no status")
		return 2
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return 2
		}
	} else if err := st.WriteTable(stdout); err != nil {
		return 2
	}
	if !st.Healthy() {
		return 1
	}
	return 0
}

func cmdSimple(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := newFlags(cmd, stderr)
	socket := fs.String("socket", defaultSocket, "control socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	_, code := callDaemon(*socket, control.Request{Command: cmd}, stderr)
	if code == 0 {
		fmt.Fprintf(stdout, "%s requested\n", cmd)
	}
	return code
}

func cmdHA(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: v6edge ha master|backup|fault [-socket PATH]")
		return 2
	}
	// The role may come before or after the flags: `v6edge ha master
	// -socket S` and `v6edge ha -socket S master` both work.
	fs := newFlags("ha", stderr)
	socket := fs.String("socket", defaultSocket, "control socket")
	var role string
	if !strings.HasPrefix(args[0], "-") {
		role, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if role == "" && fs.NArg() > 0 {
		role = fs.Arg(0)
	}
	if role == "" {
		fmt.Fprintln(stderr, "usage: v6edge ha master|backup|fault [-socket PATH]")
		return 2
	}
	_, code := callDaemon(*socket, control.Request{Command: "ha", Role: role}, stderr)
	if code == 0 {
		fmt.Fprintf(stdout, "role %s set\n", role)
	}
	return code
}
