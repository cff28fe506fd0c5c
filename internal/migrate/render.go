package migrate

import (
	"fmt"
	"strconv"
	"strings"
)

// Section is one TOML table of the generated config.
type Section struct {
	Header   string   // "wan", "[lan]" for an array entry, "lan.ra"
	Comments []string // written under the header
	Keys     []KV
	Notes    []Note // written after the keys as "# not imported:" lines
}

// KV is one key = value line; Value is TOML already.
type KV struct {
	Key, Value string
	From       string // "file:line", written as a trailing comment
	Comment    string // written on the line above
}

func (s *Section) set(key, value, from string) {
	s.Keys = append(s.Keys, KV{Key: key, Value: value, From: from})
}

func (s *Section) setC(key, value, from, comment string) {
	s.Keys = append(s.Keys, KV{Key: key, Value: value, From: from, Comment: comment})
}

func (s *Section) has(key string) bool {
	for _, kv := range s.Keys {
		if kv.Key == key {
			return true
		}
	}
	return false
}

func tomlString(s string) string { return strconv.Quote(s) }

func tomlStrings(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func from(file string, line int) string {
	if file == "" || line == 0 {
		return file
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// Render writes the config: a header naming the inputs, then each section
// with its keys and notes, then the notes that belong to no section.
func (r *Result) Render() string {
	var b strings.Builder
	b.WriteString("# v6edge config written by `v6edge import` from " + strings.Join(r.Inputs, ", ") + ".\n")
	b.WriteString("# Check it with `v6edge check -config FILE`; the reference of every key is\n# configs/examples/reference.toml (SPEC.md).\n")
	for _, c := range r.Comments {
		b.WriteString(comment(c))
	}
	top := notesFor(r.Notes, "")
	for _, n := range top {
		b.WriteString("# " + n.String() + "\n")
	}
	for _, s := range r.Sections {
		b.WriteString("\n")
		fmt.Fprintf(&b, "[%s]\n", s.Header) // "[lan]" gives [[lan]]
		for _, c := range s.Comments {
			b.WriteString(comment(c))
		}
		for _, kv := range s.Keys {
			if kv.Comment != "" {
				b.WriteString(comment(kv.Comment))
			}
			line := kv.Key + " = " + kv.Value
			if kv.From != "" {
				line += "   # " + kv.From
			}
			b.WriteString(line + "\n")
		}
		for _, n := range s.Notes {
			b.WriteString("# " + n.String() + "\n")
		}
	}
	return b.String()
}

func notesFor(notes []Note, section string) []Note {
	var out []Note
	for _, n := range notes {
		if n.Section == section {
			out = append(out, n)
		}
	}
	return out
}

// comment writes text as "# " lines of at most about 100 columns.
func comment(text string) string {
	var b strings.Builder
	line := "#"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > 100 && line != "#" {
			b.WriteString(line + "\n")
			line = "#"
		}
		line += " " + w
	}
	b.WriteString(line + "\n")
	return b.String()
}
