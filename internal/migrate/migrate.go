// Package migrate reads the configuration of the setup v6edge replaces
// (dhcpcd.conf, the dhcpcd hook script that installs the NETMAP pair,
// radvd.conf and keepalived.conf) and turns it into a v6edge config.
//
// Each parser is a pure function of its input, bounded in size and never
// panics (each has a fuzz target). Import combines their results; Render
// writes the TOML, with a "# not imported:" comment for everything that has
// no v6edge equivalent.
package migrate

import (
	"fmt"
	"strings"
)

// MaxInput bounds every input file: config files are small, and a parser
// that is fed something else fails fast instead of allocating without end.
const MaxInput = 1 << 20

// Note is a line of an input that v6edge does not import.
type Note struct {
	File string // the input's name
	Line int    // 1-based
	Text string // the line as written, trimmed
	Why  string
	// Section is where the comment goes: "wan", "nat", "lan:<iface>",
	// "ha" or "" (the top of the file).
	Section string
}

func (n Note) String() string {
	return fmt.Sprintf("not imported: %s (%s:%d): %s", oneLine(n.Text), n.File, n.Line, n.Why)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// checkSize refuses an input over MaxInput.
func checkSize(name string, data []byte) error {
	if len(data) > MaxInput {
		return fmt.Errorf("%s: %d bytes, more than the %d a config file may have", name, len(data), MaxInput)
	}
	return nil
}

// ParseError is a syntax error in an input.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }
