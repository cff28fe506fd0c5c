// Command v6edge turns a Linux box into an IPv6 edge router: DHCPv6 prefix
// delegation upstream, Router Advertisements on each LAN, a 1:1 NETMAP between
// the LAN's stable ULA prefix and the delegated prefix, and an optional VRRPv3
// active/standby pair. See README.md and SPEC.md.
//
// main is the only place that exits the process.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// usage is the global usage; every subcommand listed here has a section in
// packaging/man/v6edge.8 (TestManPagesMatchBinary checks both ways).
func usage(w io.Writer) {
	fmt.Fprint(w, `usage: v6edge <command> [flags]

commands:
  run      [-config PATH] [-log-format FORMAT] [-log-level LEVEL]      run the daemon in the foreground
  check    [-config PATH | PATH]                                       validate a config (exit 1 on any error)
  status   [-socket PATH] [-json]                                      show the daemon's state (exit 0 healthy, 1 problems, 2 unreachable)
  renew    [-socket PATH]                                              renew the delegated prefix now
  release  [-socket PATH]                                              release the delegated prefix
  ha       master|backup|fault [-socket PATH]                          set the HA role (ha.mode = "external")
  import   [-dhcpcd F] [-hook F] [-radvd F] [-keepalived F] [-keep-keepalived] [-o F]   write a v6edge config from dhcpcd + hook + radvd + keepalived (exit 1 if something was left out)
  version                                                              print the version
  help     [COMMAND]                                                   print this usage, or a command's

'v6edge help COMMAND' or 'v6edge COMMAND -h' prints a command's flags.
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
		return cmdRun(args, stdout, stderr)
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
		return cmdVersion(args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		return cmdHelp(args, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "v6edge: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

// cmdHelp prints the global usage, or with a command name that command's
// usage (the same text as `v6edge COMMAND -h`), to stdout.
func cmdHelp(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stdout)
		return 0
	case len(args) > 1 || strings.HasPrefix(args[0], "-") || args[0] == "help":
		usage(stderr)
		return 2
	}
	var discard bytes.Buffer
	code := run([]string{args[0], "-h"}, stdout, &discard)
	if code != 0 {
		// An unknown command: run() wrote the error and the usage.
		stderr.Write(discard.Bytes())
	}
	return code
}

func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("version", "", "print the version")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "v6edge version: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fmt.Fprintln(stdout, "v6edge", version)
	return 0
}

// newFlags returns a subcommand's bare flag set, writing to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("v6edge "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// flagSet returns a subcommand's flag set for parse. Its usage names the
// command, the synopsis and what it does, then the flags with their defaults.
func flagSet(name, synopsis, summary string) *flag.FlagSet {
	fs := newFlags(name, io.Discard)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: v6edge %s %s\n\n%s\n", name, synopsis, summary)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses a subcommand's flags the Go way: -h or -help prints the usage
// to stdout and exits 0; a bad flag prints the error and the usage to stderr
// and exits 2. ok is false when the command must exit with code.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		stdout.Write(buf.Bytes())
		return 0, false
	default:
		stderr.Write(buf.Bytes())
		return 2, false
	}
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("run", "[-config PATH] [-log-format auto|text|json|journal] [-log-level LEVEL]",
		"Run the daemon in the foreground; logs go to standard error.")
	path := fs.String("config", defaultConfig, "config `file`")
	format := fs.String("log-format", "auto", "log `format`: auto (journal under systemd's journal, else text), text, json or journal")
	level := fs.String("log-level", "info", "log `level`: debug, info, warn, error")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "v6edge run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "v6edge: -log-level: %v\n", err)
		return 2
	}
	h, err := logHandler(*format, stderr, &slog.HandlerOptions{Level: lvl})
	if err != nil {
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
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

// cmdCheck validates a config: errors exit 1; what would only fail at run
// time (a missing hook, group or interface) is a warning and exits 0.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("check", "[-config PATH | PATH]",
		"Validate a config file: every error names its key and line (exit 1 on any).\n"+
			"Warns, without failing, about what would fail at run time: a hook that is\n"+
			"missing or not executable, a socket_group that does not exist, interfaces\n"+
			"that do not exist (yet).")
	path := fs.String("config", defaultConfig, "config `file`")
	var file string
	// The path may come before or after the flags.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 && file == "" {
		file = fs.Arg(0)
	}
	if fs.NArg() > 1 || (file != "" && fs.NArg() == 1 && fs.Arg(0) != file) {
		fmt.Fprintln(stderr, "v6edge check: more than one config file")
		return 2
	}
	if file != "" {
		configSet := false
		fs.Visit(func(f *flag.Flag) { configSet = configSet || f.Name == "config" })
		if configSet && *path != file {
			fmt.Fprintf(stderr, "v6edge check: -config %s and %s: give one config file\n", *path, file)
			return 2
		}
		*path = file
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, w := range runtimeWarnings(cfg) {
		fmt.Fprintf(stderr, "%s: warning: %s\n", *path, w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	return 0
}

// interfaceByName is net.InterfaceByName; tests replace it.
var interfaceByName = net.InterfaceByName

// runtimeWarnings lists what a valid config names but this machine lacks now.
func runtimeWarnings(cfg *configs.Config) []string {
	var warn []string
	for _, w := range cfg.WANs {
		if w.Hook == "" {
			continue
		}
		fi, err := os.Stat(w.Hook)
		switch {
		case err != nil:
			warn = append(warn, fmt.Sprintf("wan %s: hook %s: %v", w.Interface, w.Hook, errors.Unwrap(err)))
		case !fi.Mode().IsRegular():
			warn = append(warn, fmt.Sprintf("wan %s: hook %s is not a regular file", w.Interface, w.Hook))
		case fi.Mode().Perm()&0o111 == 0:
			warn = append(warn, fmt.Sprintf("wan %s: hook %s is not executable", w.Interface, w.Hook))
		}
	}
	if g := cfg.Control.SocketGroup; g != "" {
		if _, err := control.LookupGroup(g); err != nil {
			warn = append(warn, fmt.Sprintf("control.socket_group %q does not exist: the daemon will not start", g))
		}
	}
	var ifaces []string
	for _, w := range cfg.WANs {
		ifaces = append(ifaces, w.Interface)
	}
	for _, l := range cfg.LANs {
		ifaces = append(ifaces, l.Interface)
	}
	for _, name := range ifaces {
		if _, err := interfaceByName(name); err != nil {
			warn = append(warn, fmt.Sprintf("interface %s does not exist (yet)", name))
		}
	}
	return warn
}

// callDaemon sends req; on failure it prints the error to stderr and
// returns the exit code: 2 unreachable, 1 refused by the daemon.
func callDaemon(socket string, req control.Request, stderr io.Writer) (*control.Response, int) {
	resp, code, err := call(socket, req)
	if err != nil {
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
	}
	return resp, code
}

// call is callDaemon returning the error instead of printing it.
func call(socket string, req control.Request) (*control.Response, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := control.Call(ctx, socket, req)
	if err != nil {
		return nil, 2, err
	}
	if !resp.OK {
		return resp, 1, errors.New(resp.Error)
	}
	return resp, 0, nil
}

// jsonError is what `status -json` prints instead of the status document
// when there is none, so a script parses stdout either way.
type jsonError struct {
	Error     string `json:"error"`
	Reachable bool   `json:"reachable"`
	Socket    string `json:"socket"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("status", "[-socket PATH] [-json]",
		"Show the daemon's state: exit 0 healthy, 1 problems, 2 unreachable.\n"+
			"Times are in the local time zone. With -json, failures print a JSON\n"+
			"object {\"error\": ..., \"reachable\": ..., \"socket\": ...} to stdout.")
	socket := fs.String("socket", defaultSocket, "control socket `path`")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	fail := func(code int, reachable bool, err error) int {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(jsonError{Error: err.Error(), Reachable: reachable, Socket: *socket})
		}
		fmt.Fprintf(stderr, "v6edge: %v\n", err)
		return code
	}
	resp, code, err := call(*socket, control.Request{Command: "status"})
	if err != nil {
		return fail(code, code != 2, err)
	}
	st := resp.Status
	if st == nil {
		return fail(2, true, errors.New("daemon sent no status"))
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
	summary := map[string]string{
		"renew":   "Ask the daemon to renew the delegated prefix now.",
		"release": "Ask the daemon to release the delegated prefix (refused in an HA pair).",
	}[cmd]
	fs := flagSet(cmd, "[-socket PATH]", summary)
	socket := fs.String("socket", defaultSocket, "control socket `path`")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if _, code := callDaemon(*socket, control.Request{Command: cmd}, stderr); code != 0 {
		return code
	}
	fmt.Fprintf(stdout, "%s requested\n", cmd)
	return 0
}

func cmdHA(args []string, stdout, stderr io.Writer) int {
	// The role may come before or after the flags: `v6edge ha master
	// -socket S` and `v6edge ha -socket S master` both work.
	fs := flagSet("ha", "master|backup|fault [-socket PATH]",
		"Set the node's HA role (with [ha] mode = \"external\"), e.g. from a\nkeepalived notify script.")
	socket := fs.String("socket", defaultSocket, "control socket `path`")
	var role string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		role, args = args[0], args[1:]
	}
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if role == "" && fs.NArg() > 0 {
		role = fs.Arg(0)
	}
	if role == "" {
		fs.Usage()
		return 2
	}
	if _, code := callDaemon(*socket, control.Request{Command: "ha", Role: role}, stderr); code != 0 {
		return code
	}
	fmt.Fprintf(stdout, "role %s set\n", role)
	return 0
}
