package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/v6edge/v6edge/configs"
	"github.com/v6edge/v6edge/internal/migrate"
)

// cmdImport writes a v6edge config from the dhcpcd + hook + radvd +
// keepalived setup it replaces. Exit 0: everything imported; 1: something
// was left out (listed on stderr, and as comments in the config, which is
// still written); 2: usage, a file that does not parse, or a result that
// does not validate.
func cmdImport(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("import", "[-dhcpcd F] [-hook F] [-radvd F] [-keepalived F] [-keep-keepalived] [-o F]",
		"Write a v6edge config from a dhcpcd + hook + radvd + keepalived setup; exit 1 if something was left out.")
	dhcpcd := fs.String("dhcpcd", "/etc/dhcpcd.conf", "dhcpcd.conf to import")
	hook := fs.String("hook", "", "the dhcpcd hook script with the NETMAP rules (default: dhcpcd.conf's script)")
	radvd := fs.String("radvd", "/etc/radvd.conf", "radvd.conf to import")
	keepalived := fs.String("keepalived", "/etc/keepalived/keepalived.conf", "keepalived.conf to import (HA pair)")
	keep := fs.Bool("keep-keepalived", false, "keep keepalived: write [ha] mode = \"external\" and print the notify lines to use")
	out := fs.String("o", "", "write the config here instead of stdout")
	if code, ok := parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "v6edge import: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	// read reads a file given with a flag; a default path that does not
	// exist is skipped (no keepalived on a single router).
	read := func(flagName, path string) (*migrate.File, error) {
		if path == "" {
			return nil, nil
		}
		data, err := readBounded(path)
		if errors.Is(err, os.ErrNotExist) && !set[flagName] {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &migrate.File{Name: filepath.Base(path), Data: data}, nil
	}
	in := migrate.Inputs{KeepKeepalived: *keep, ReadFile: readBounded}
	var err error
	if in.Dhcpcd, err = read("dhcpcd", *dhcpcd); err != nil {
		fmt.Fprintf(stderr, "v6edge import: %v\n", err)
		return 2
	}
	hookPath := *hook
	if hookPath == "" && in.Dhcpcd != nil {
		if d, err := migrate.ParseDhcpcd(in.Dhcpcd.Name, in.Dhcpcd.Data); err == nil && d.Script != "" {
			hookPath = d.Script
			if _, err := os.Stat(hookPath); err != nil {
				hookPath = "" // noted by Import: the script was not read
			}
		}
	}
	if in.Hook, err = read("hook", hookPath); err != nil {
		fmt.Fprintf(stderr, "v6edge import: %v\n", err)
		return 2
	}
	if in.Hook != nil {
		if abs, err := filepath.Abs(hookPath); err == nil {
			in.HookPath = abs
		}
	}
	if in.Radvd, err = read("radvd", *radvd); err != nil {
		fmt.Fprintf(stderr, "v6edge import: %v\n", err)
		return 2
	}
	if in.Keepalived, err = read("keepalived", *keepalived); err != nil {
		fmt.Fprintf(stderr, "v6edge import: %v\n", err)
		return 2
	}
	if exe, err := os.Executable(); err == nil {
		in.V6edge = exe
	}
	res, err := migrate.Import(in)
	if err != nil {
		fmt.Fprintf(stderr, "v6edge import: %v\n", err)
		return 2
	}
	text := res.Render()
	if _, err := configs.Parse("imported config", []byte(text)); err != nil {
		fmt.Fprintf(stderr, "v6edge import: the imported config does not validate:\n%v\n\n%s", err, text)
		return 2
	}
	if *out != "" {
		if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
			fmt.Fprintf(stderr, "v6edge import: %v\n", err)
			return 2
		}
	} else if _, err := io.WriteString(stdout, text); err != nil {
		return 2
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, n.String())
	}
	if len(res.NotifyLines) > 0 {
		fmt.Fprintln(stderr, "keep keepalived: use these lines in its vrrp_instance instead of the notify scripts:")
		for _, l := range res.NotifyLines {
			fmt.Fprintln(stderr, "\t"+l)
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintf(stderr, "v6edge import: %d line(s) not imported (see the comments in the config)\n", len(res.Notes))
		return 1
	}
	return 0
}

// readBounded reads a config file of at most migrate.MaxInput bytes.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, migrate.MaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > migrate.MaxInput {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, migrate.MaxInput)
	}
	return data, nil
}
