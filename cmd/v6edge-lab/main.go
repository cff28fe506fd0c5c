// Command v6edge-lab runs a v6edge binary in a throw-away network-namespace
// lab (internal/testbed): `demo` shows a newcomer the whole data path, and
// `bench` compares v6edge's start-up and operations with the incumbent
// dhcpcd + hook + radvd. It is development tooling and ships apart from
// the daemon, which links none of it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/testbed"
)

// defaultConfig is the demo's config, relative to the repository root
// (where `make demo` runs): the one source of the config the lab runs.
const defaultConfig = "configs/examples/demo.toml"

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: v6edge-lab <command> [flags]

Runs v6edge in a network-namespace lab; needs root and the peer programs
(make deps installs them).

commands:
  demo   [-v6edge PATH] [-config PATH]            build a lab and show v6edge working
  bench  [-v6edge PATH] [-config PATH] [-runs N]  measure start-to-serving and operations against dhcpcd + nft hook + radvd

flags:
  -v6edge PATH   the v6edge binary to run (default: v6edge next to this program, e.g. bin/v6edge)
  -config PATH   the v6edge config the lab runs; its [control] paths are replaced by the lab's
                 (default: `+defaultConfig+`)
  -runs N        bench: runs per contender (default 5)
`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	var cmd string
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "demo", "bench":
		return runLab(cmd, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "":
		usage(stderr)
		return 2
	}
	fmt.Fprintf(stderr, "v6edge-lab: unknown command %q\n", cmd)
	usage(stderr)
	return 2
}

// runLab runs the demo or the bench with its flags.
func runLab(cmd string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("v6edge-lab "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stderr) }
	binPath := fs.String("v6edge", "", "the v6edge binary to run (default: v6edge next to this program)")
	configPath := fs.String("config", defaultConfig, "the v6edge config the lab runs")
	var runs *int
	if cmd == "bench" {
		runs = fs.Int("runs", 5, "runs per contender")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "v6edge-lab %s: unexpected arguments %q\n", cmd, fs.Args())
		return 2
	}

	v, err := daemon(*binPath, *configPath)
	if err != nil {
		fmt.Fprintf(stderr, "v6edge-lab %s: %v\n", cmd, err)
		return 1
	}
	return inLab(cmd, stderr, func(ctx context.Context) error {
		if cmd == "bench" {
			return testbed.Bench(ctx, stdout, v, *runs)
		}
		return testbed.Demo(ctx, stdout, v)
	})
}

// daemon returns the v6edge binary (bin, or v6edge next to this program)
// as an absolute path, checked to be an executable file, with the config
// text read from configPath and checked to be a valid v6edge config.
func daemon(bin, configPath string) (testbed.V6edge, error) {
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return testbed.V6edge{}, err
		}
		bin = filepath.Join(filepath.Dir(self), "v6edge")
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		return testbed.V6edge{}, err
	}
	if fi, err := os.Stat(bin); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return testbed.V6edge{}, fmt.Errorf("no v6edge binary at %s (make build builds bin/v6edge; -v6edge PATH names another)", bin)
	}
	text, err := os.ReadFile(configPath)
	if err != nil {
		return testbed.V6edge{}, fmt.Errorf("the demo config: %w", err)
	}
	if _, err := configs.Parse(configPath, text); err != nil {
		return testbed.V6edge{}, err
	}
	return testbed.V6edge{Bin: bin, Config: string(text)}, nil
}

// inLab runs fn with a context ended by SIGTERM/SIGINT, after checking that
// a lab can be built here (root, the peer programs installed). It returns
// the exit code.
func inLab(what string, stderr io.Writer, fn func(ctx context.Context) error) int {
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "v6edge-lab %s builds network namespaces and must run as root\n", what)
		return 1
	}
	if missing := testbed.Missing(); len(missing) > 0 {
		fmt.Fprintf(stderr, "v6edge-lab %s needs these programs: %v (make deps installs them)\n", what, missing)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := fn(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintf(stderr, "%s interrupted; lab removed\n", what)
			return 130
		}
		fmt.Fprintf(stderr, "%s failed: %v\n", what, err)
		return 1
	}
	return 0
}
