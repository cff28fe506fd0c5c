package migrate

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Hook is what a dhcpcd hook script that installs the NETMAP pair says.
type Hook struct {
	// InternalPrefix is the ULA side of the NETMAP pair: a literal prefix
	// the NETMAP / "prefix to" rules map to, or the value of an assignment
	// they use.
	InternalPrefix netip.Prefix
	InternalLine   int
	// ExpectedLength is the delegated length the script insists on (its
	// "-ne N" check, or the internal prefix's length it cuts out).
	ExpectedLength int
	WANInterface   string // -i/-o or iifname/oifname of the NAT rules
	Tool           string // "ip6tables" or "nft"
	Hairpin        bool   // the script also NATs LAN-to-LAN traffic to the external prefix
	// Extra are the lines doing something v6edge does not do itself: the
	// script is then kept as wan.hook.
	Extra []Note
	// Dropped are the bookkeeping lines v6edge's own state replaces.
	Dropped int
}

var (
	assignRe    = regexp.MustCompile(`^(?:local\s+|export\s+|readonly\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	varRe       = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	funcRe      = regexp.MustCompile(`^(?:function\s+)?[A-Za-z_][A-Za-z0-9_]*\s*\(\)\s*\{?$`)
	casePattern = regexp.MustCompile(`^\(?[^()|\s;]+(?:\s*\|\s*[^()|\s;]+)*\)\s*`)
	heredoc     = regexp.MustCompile(`<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
)

// bookkeeping are commands whose work v6edge does itself (state of the
// current prefix, logging, tests) or that only steer the script.
var bookkeeping = map[string]bool{
	"echo": true, "printf": true, "logger": true, "env": true, "true": true, "false": true, "exit": true,
	"return": true, "test": true, "[": true, "[[": true, "]": true, "cat": true, "mkdir": true, "cut": true,
	"grep": true, "dirname": true, "basename": true, "date": true, "rm": true, "set": true, "shift": true,
	"unset": true, "local": true, "export": true, "readonly": true, ":": true, "head": true, "tail": true,
	"sed": true, "awk": true, "tr": true, "touch": true, "sleep": true, "wc": true,
}

// control are shell words that open, continue or close compound commands.
var control = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "case": true, "esac": true,
	"while": true, "until": true, "for": true, "do": true, "done": true, "!": true, "{": true, "}": true,
	";;": true, "in": true,
}

// ParseHook reads a hook script (sh or bash). It never fails on content it
// does not understand: that goes to Extra.
func ParseHook(name string, data []byte) (*Hook, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	h := &Hook{}
	vars := map[string]string{}
	funcs := map[string]bool{}
	// Logical lines: backslash continuations joined, heredocs attached to
	// the line that opens them.
	type logical struct {
		n          int
		text, body string
	}
	var lines []logical
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxInput+1)
	n := 0
	var cur *logical
	var hereEnd string
	for sc.Scan() {
		n++
		raw := sc.Text()
		if hereEnd != "" {
			if strings.TrimSpace(raw) == hereEnd {
				hereEnd = ""
				lines = append(lines, *cur)
				cur = nil
			} else {
				cur.body += raw + "\n"
			}
			continue
		}
		t := strings.TrimSpace(raw)
		if cur == nil {
			if t == "" || strings.HasPrefix(t, "#") {
				continue
			}
			cur = &logical{n: n}
		}
		if strings.HasSuffix(t, "\\") {
			cur.text += strings.TrimSuffix(t, "\\") + " "
			continue
		}
		cur.text += t
		if m := heredoc.FindStringSubmatch(cur.text); m != nil {
			hereEnd = m[1]
			continue
		}
		lines = append(lines, *cur)
		cur = nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cur != nil {
		lines = append(lines, *cur)
	}

	expand := func(s string) string {
		return varRe.ReplaceAllStringFunc(s, func(m string) string {
			sub := varRe.FindStringSubmatch(m)
			k := sub[1] + sub[2]
			if v, ok := vars[k]; ok {
				return v
			}
			return m
		})
	}
	for _, l := range lines {
		text := strings.TrimSpace(stripShellComment(l.text))
		if text == "" {
			continue
		}
		if funcRe.MatchString(text) {
			funcs[strings.TrimSpace(strings.TrimPrefix(strings.SplitN(text, "(", 2)[0], "function "))] = true
			h.Dropped++
			continue
		}
		text = casePattern.ReplaceAllString(text, "")
		if m := assignRe.FindStringSubmatch(text); m != nil && !strings.ContainsAny(m[2], "`") && !strings.Contains(m[2], "$(") {
			v := unquote(expand(strings.TrimSpace(m[2])))
			if len(vars) < 1000 && len(v) < 1000 {
				vars[m[1]] = v
			}
			h.Dropped++
			continue
		}
		extra := false
		for _, cmd := range splitCommands(text) {
			words := shellWords(expand(cmd))
			for len(words) > 0 && (control[words[0]] || isCasePattern(words[0])) {
				words = words[1:]
			}
			if len(words) == 0 {
				continue
			}
			if m := assignRe.FindStringSubmatch(words[0]); m != nil {
				continue
			}
			prog := path.Base(words[0])
			switch {
			case prog == "ip6tables" || prog == "ip6tables-legacy" || prog == "ip6tables-nft":
				if !h.ip6tables(words[1:]) {
					extra = true
				}
			case prog == "nft":
				if !h.nft(words[1:], l.body) {
					extra = true
				}
			case bookkeeping[prog] || funcs[prog] || strings.HasPrefix(words[0], "$"):
				// A command from an unknown variable is most likely the
				// script's own ip6tables path; bookkeeping otherwise.
			default:
				extra = true
			}
		}
		if extra {
			h.Extra = append(h.Extra, Note{name, l.n, text, "", "wan"})
		} else {
			h.Dropped++
		}
	}
	h.ExpectedLength = expectedLength(data)
	if h.InternalPrefix.IsValid() && h.ExpectedLength == 0 {
		h.ExpectedLength = h.InternalPrefix.Bits()
	}
	// The line that names the internal prefix, for comments.
	if h.InternalPrefix.IsValid() {
		want := h.InternalPrefix.String()
		for i, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, want) {
				h.InternalLine = i + 1
				break
			}
		}
	}
	return h, nil
}

func stripShellComment(s string) string {
	inS, inD := false, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			if !inD {
				inS = !inS
			}
		case '"':
			if !inS {
				inD = !inD
			}
		case '#':
			if !inS && !inD && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t') {
				return s[:i]
			}
		}
	}
	return s
}

func isCasePattern(w string) bool {
	return strings.HasSuffix(w, ")") && !strings.Contains(w, "(")
}

// splitCommands splits at ; && || | outside quotes.
func splitCommands(s string) []string {
	var out []string
	inS, inD, start := false, false, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && !inD:
			inS = !inS
		case c == '"' && !inS:
			inD = !inD
		case inS || inD:
		case c == ';' || c == '|' || c == '&':
			if c == ';' && i+1 < len(s) && s[i+1] == ';' {
				out = append(out, s[start:i])
				i++
				start = i + 1
				continue
			}
			out = append(out, s[start:i])
			if i+1 < len(s) && (s[i+1] == '&' || s[i+1] == '|') {
				i++
			}
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// shellWords splits on blanks outside quotes and removes the quotes;
// redirections are dropped.
func shellWords(s string) []string {
	var words []string
	var b strings.Builder
	inS, inD, have := false, false, false
	flush := func() {
		if have {
			w := b.String()
			if !strings.HasPrefix(w, ">") && !strings.HasPrefix(w, "2>") && !strings.HasPrefix(w, "<") && !strings.HasPrefix(w, "1>") {
				words = append(words, w)
			}
		}
		b.Reset()
		have = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' && !inD:
			inS, have = !inS, true
		case c == '"' && !inS:
			inD, have = !inD, true
		case (c == ' ' || c == '\t') && !inS && !inD:
			flush()
		default:
			b.WriteByte(c)
			have = true
		}
	}
	flush()
	return words
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// literalPrefix parses s as a prefix without host bits.
func literalPrefix(s string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(strings.Trim(s, `"';{}`))
	if err != nil || !p.Addr().Is6() || p.Masked() != p {
		return netip.Prefix{}, false
	}
	return p, true
}

// ip6tables recognises the NAT rules (and the listing and chain
// bookkeeping around them); it reports false for anything else.
func (h *Hook) ip6tables(args []string) bool {
	table := "filter"
	netmapTo, in, out := "", "", ""
	mark, listing, target := false, false, ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch a {
		case "-t", "--table":
			table = next()
		case "-L", "--list", "-S", "--list-rules", "-N", "--new-chain", "-F", "--flush", "-X", "--delete-chain", "-Z":
			if a == "-L" || a == "-S" || a == "--list" || a == "--list-rules" {
				listing = true
			}
		case "-j", "--jump":
			target = next()
		case "--to":
			netmapTo = next()
		case "-i", "--in-interface":
			in = next()
		case "-o", "--out-interface":
			out = next()
		case "--set-mark", "--mark":
			mark = true
		}
	}
	if listing {
		return true
	}
	if table != "nat" && table != "mangle" {
		return false
	}
	h.Tool = "ip6tables"
	if mark {
		h.Hairpin = true
	}
	if target == "NETMAP" {
		if p, ok := literalPrefix(netmapTo); ok && !h.InternalPrefix.IsValid() {
			h.InternalPrefix = p
		}
		for _, ifc := range []string{in, out} {
			if ifc != "" && h.WANInterface == "" && !strings.HasPrefix(ifc, "$") {
				h.WANInterface = ifc
			}
		}
	}
	return true
}

var (
	nftPrefixTo = regexp.MustCompile(`prefix\s+to\s+(\S+)`)
	nftSaddr    = regexp.MustCompile(`ip6\s+saddr\s+(\S+)\s+snat`)
	nftIfname   = regexp.MustCompile(`(?:iifname|oifname)\s+"?([A-Za-z0-9_.@-]+)"?`)
	nftNetmap   = regexp.MustCompile(`(?:snat|dnat)\s+(?:ip6\s+)?(?:prefix\s+)?to`)
)

// nft recognises an nft command (or nft -f - with a heredoc) that writes
// the NETMAP pair or deletes / lists its table.
func (h *Hook) nft(args []string, body string) bool {
	text := strings.Join(args, " ") + "\n" + body
	if !nftNetmap.MatchString(text) {
		// Deleting, flushing or listing a table is bookkeeping around
		// the pair; anything else (filter rules, sets) is not ours.
		for _, w := range args {
			if w == "delete" || w == "flush" || w == "list" {
				return true
			}
		}
		return false
	}
	h.Tool = "nft"
	for _, m := range nftPrefixTo.FindAllStringSubmatch(text, -1) {
		if p, ok := literalPrefix(m[1]); ok && !h.InternalPrefix.IsValid() {
			h.InternalPrefix = p
		}
	}
	for _, m := range nftSaddr.FindAllStringSubmatch(text, -1) {
		if p, ok := literalPrefix(m[1]); ok && !h.InternalPrefix.IsValid() {
			h.InternalPrefix = p
		}
	}
	if m := nftIfname.FindStringSubmatch(text); m != nil && h.WANInterface == "" {
		h.WANInterface = m[1]
	}
	if strings.Contains(text, "mark") {
		h.Hairpin = true
	}
	// An explicit length check: [ "$len" -ne 56 ] or != 56.
	return true
}

var lengthCheck = regexp.MustCompile(`prefix1?_length\}?"?\s+(?:-ne|!=|-eq|=)\s+"?([0-9]{1,3})`)

// expectedLength finds a literal length check in the script text.
func expectedLength(data []byte) int {
	if m := lengthCheck.FindSubmatch(data); m != nil {
		if n, err := strconv.Atoi(string(m[1])); err == nil && n >= 1 && n <= 128 {
			return n
		}
	}
	return 0
}
