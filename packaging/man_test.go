package packaging_test

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// manSections splits a man page into its .SH sections, each with the
// terms of its .TP entries (the bold words of the line after .TP).
func manSections(t *testing.T, path string) (map[string][]string, string) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string][]string{}
	cur := ""
	lines := strings.Split(string(text), "\n")
	word := regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, ".SH "):
			cur = strings.Trim(strings.TrimSpace(l[4:]), `"`)
			sections[cur] = sections[cur][:0:0]
		case l == ".TP" && i+1 < len(lines):
			term := lines[i+1]
			if !strings.HasPrefix(term, ".B ") && !strings.HasPrefix(term, ".BR ") {
				continue
			}
			_, args, _ := strings.Cut(term, " ")
			// .BR alternates bold words and roman separators such as ", ".
			for _, f := range regexp.MustCompile(`"[^"]*"|\S+`).FindAllString(args, -1) {
				if word.MatchString(f) {
					sections[cur] = append(sections[cur], f)
				}
			}
		}
	}
	return sections, string(text)
}

// helpCommands and commandFlags ask the binary itself.
func helpCommands(t *testing.T, bin string) []string {
	out, err := exec.Command(bin, "help").Output()
	if err != nil {
		t.Fatalf("v6edge help: %v", err)
	}
	var cmds []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case l == "commands:":
			in = true
		case in && strings.HasPrefix(l, "  "):
			cmds = append(cmds, strings.Fields(l)[0])
		case in:
			in = false
		}
	}
	return cmds
}

func commandFlags(t *testing.T, bin, cmd string) []string {
	out, err := exec.Command(bin, cmd, "-h").Output()
	if err != nil {
		t.Fatalf("v6edge %s -h: %v", cmd, err)
	}
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	return flags
}

// referenceKeys reads configs/examples/reference.toml: table -> keys, with
// the keys of inline tables dotted (lan: pd, pd.length, pd.count).
func referenceKeys(t *testing.T) map[string][]string {
	f, err := os.Open("../configs/examples/reference.toml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string][]string{}
	table := ""
	header := regexp.MustCompile(`^\[\[?([a-z_.]+)\]\]?\s*$`)
	kv := regexp.MustCompile(`^([a-z_]+)\s*=\s*(.*)$`)
	inline := regexp.MustCompile(`([a-z_]+)\s*=`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if m := header.FindStringSubmatch(l); m != nil {
			table = m[1]
			continue
		}
		m := kv.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		keys[table] = append(keys[table], m[1])
		if v := strings.TrimSpace(m[2]); strings.HasPrefix(v, "{") {
			for _, s := range inline.FindAllStringSubmatch(v, -1) {
				keys[table] = append(keys[table], m[1]+"."+s[1])
			}
		}
	}
	return keys
}

func set(xs []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// TestManPagesMatchBinary: every subcommand `v6edge help` lists and every
// flag it takes is in v6edge(8), every key of reference.toml in
// v6edge.toml(5), and neither page names a command, flag, table or key the
// binary lacks.
func TestManPagesMatchBinary(t *testing.T) {
	bin := v6edgeBinary(t)
	sections, page := manSections(t, "man/v6edge.8")
	cmds := helpCommands(t, bin)
	if len(cmds) < 7 {
		t.Fatalf("v6edge help lists %v", cmds)
	}
	documented := set(sections["COMMANDS"])
	for _, c := range cmds {
		if !documented[c] {
			t.Errorf("v6edge(8) COMMANDS lacks %q, which v6edge help lists", c)
		}
		if !strings.Contains(page, ".B v6edge "+c) && !strings.Contains(page, "\n.B "+c+"\n") {
			t.Errorf("v6edge(8) SYNOPSIS lacks %q", c)
		}
	}
	known := set(cmds)
	for c := range documented {
		if !known[c] {
			t.Errorf("v6edge(8) documents a command %q that v6edge help does not list", c)
		}
	}
	flags := map[string]bool{"h": true}
	for _, c := range cmds {
		if c == "help" {
			continue
		}
		for _, f := range commandFlags(t, bin, c) {
			flags[f] = true
			if !strings.Contains(page, `\-`+strings.ReplaceAll(f, "-", `\-`)) {
				t.Errorf("v6edge(8) lacks %s's flag -%s", c, f)
			}
		}
	}
	// Other programs' command lines (journalctl -p ...) are not ours.
	own := regexp.MustCompile(`(?m)^\.B journalctl .*$`).ReplaceAllString(page, "")
	for _, m := range regexp.MustCompile(`(?:^|[\s"(])\\-([a-z][a-z0-9]*(?:\\-[a-z0-9]+)*)`).FindAllStringSubmatch(own, -1) {
		f := strings.ReplaceAll(m[1], `\-`, "-")
		if !flags[f] {
			t.Errorf("v6edge(8) names a flag -%s that no command takes", f)
		}
	}

	keys := referenceKeys(t)
	tsections, _ := manSections(t, "man/v6edge.toml.5")
	var tables []string
	for table := range keys {
		if table != "" {
			tables = append(tables, table)
		}
	}
	sort.Strings(tables)
	if len(tables) < 7 || len(keys[""]) > 0 {
		t.Fatalf("reference.toml read as tables %v, top-level keys %v", tables, keys[""])
	}
	for _, table := range tables {
		sec, ok := tsections["["+table+"]"]
		if !ok {
			sec, ok = tsections["[["+table+"]]"]
		}
		if !ok {
			t.Errorf("v6edge.toml(5) has no section for [%s]", table)
			continue
		}
		documented, ref := set(sec), set(keys[table])
		for _, k := range keys[table] {
			if !documented[k] {
				t.Errorf("v6edge.toml(5) [%s] lacks %s", table, k)
			}
		}
		for k := range documented {
			if !ref[k] {
				t.Errorf("v6edge.toml(5) [%s] documents %s, which reference.toml lacks", table, k)
			}
		}
	}
	for name := range tsections {
		if strings.HasPrefix(name, "[") {
			if table := strings.Trim(name, "[]"); keys[table] == nil {
				t.Errorf("v6edge.toml(5) documents a table %s that reference.toml lacks", name)
			}
		}
	}
}
