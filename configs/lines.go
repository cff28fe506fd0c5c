package configs

import (
	"strconv"
	"strings"
)

// lineIndex maps a key path, written the way errors name keys ("wan.iaid",
// "lan[1].subnet", "lan[0].pd.length", "lan[0].dns[2]"), to the 1-based line
// where that key, table header or array element starts.
//
// BurntSushi/toml records one position per dotted key, so the second [[lan]]
// block overwrites the first one's positions; it cannot say which lan a
// "lan.subnet" belongs to. The index is therefore built by a small scanner of
// its own. It only ever runs on text the TOML parser has accepted, but it is
// written to be harmless on any input: it never panics and always advances.
type lineIndex map[string]int

// line returns the line of path, or of its nearest recorded ancestor (the
// table a missing key belongs in), or 0 when nothing of it is in the file.
func (ix lineIndex) line(path string) int {
	for path != "" {
		if l, ok := ix[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// locate turns a dotted key without array indexes, as BurntSushi/toml
// names keys ("lan.subnet"), into the indexed path recorded last at or
// before line ("lan[1].subnet"). Unknown keys come back unchanged.
func (ix lineIndex) locate(key string, line int) string {
	best, bestLine := key, 0
	for path, l := range ix {
		if l <= line && l >= bestLine && stripIndexes(path) == key {
			if l > bestLine || path > best {
				best, bestLine = path, l
			}
		}
	}
	return best
}

// stripIndexes removes the "[n]" parts of a path.
func stripIndexes(path string) string {
	var b strings.Builder
	depth := 0
	for _, c := range path {
		switch {
		case c == '[':
			depth++
		case c == ']' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// parentPath strips the last component: "lan[1].ra.mtu" → "lan[1].ra" →
// "lan[1]" → "lan" → "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// indexLines scans TOML source and records where every key lives.
func indexLines(src []byte) lineIndex {
	s := &lineScanner{src: src, line: 1, ix: lineIndex{}, arrays: map[string]int{}}
	s.document()
	return s.ix
}

type lineScanner struct {
	src  []byte
	pos  int
	line int
	ix   lineIndex
	// arrays counts the [[name]] headers seen per resolved path, so the n-th
	// [[lan]] block becomes lan[n-1] and [lan.ra] after it resolves to the
	// latest element.
	arrays map[string]int
}

func (s *lineScanner) eof() bool { return s.pos >= len(s.src) }

func (s *lineScanner) peek(off int) byte {
	if s.pos+off < len(s.src) {
		return s.src[s.pos+off]
	}
	return 0
}

func (s *lineScanner) advance() {
	if s.src[s.pos] == '\n' {
		s.line++
	}
	s.pos++
}

func (s *lineScanner) record(path string) {
	if _, ok := s.ix[path]; !ok && path != "" {
		s.ix[path] = s.line
	}
}

// skipBlank skips spaces and tabs, and with newlines also line breaks and
// comments (as between the elements of a multi-line array).
func (s *lineScanner) skipBlank(newlines bool) {
	for !s.eof() {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance()
		case c == '#':
			if !newlines {
				return
			}
			s.skipLine()
		case c == '\n' && newlines:
			s.advance()
		default:
			return
		}
	}
}

// skipLine moves to the start of the next line.
func (s *lineScanner) skipLine() {
	for !s.eof() {
		c := s.src[s.pos]
		s.advance()
		if c == '\n' {
			return
		}
	}
}

func (s *lineScanner) document() {
	table := ""
	for !s.eof() {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		start := s.pos
		if s.src[s.pos] == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		// Whatever follows on the line (a comment, or text the parser would
		// have rejected) is not a key.
		if s.pos == start {
			s.advance()
		}
		s.skipBlank(false)
		if !s.eof() && s.src[s.pos] != '\n' {
			s.skipLine()
		}
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the resolved table path.
func (s *lineScanner) header() string {
	s.advance()
	array := s.peek(0) == '['
	if array {
		s.advance()
	}
	parts := s.key()
	if len(parts) == 0 {
		return ""
	}
	path := s.resolve("", parts[:len(parts)-1])
	path = joinPath(path, parts[len(parts)-1])
	if array {
		n := s.arrays[path]
		s.arrays[path] = n + 1
		s.record(path)
		path = indexPath(path, n)
	}
	s.record(path)
	for !s.eof() && s.src[s.pos] == ']' {
		s.advance()
	}
	return path
}

// resolve appends dotted key parts to base, descending into the latest
// element of any array of tables on the way, and records the tables it
// names.
func (s *lineScanner) resolve(base string, parts []string) string {
	path := base
	for _, p := range parts {
		path = joinPath(path, p)
		// An implicit table ("a" of [a.b]) lives where it is first named.
		s.record(path)
		if n, ok := s.arrays[path]; ok && n > 0 {
			path = indexPath(path, n-1)
		}
	}
	return path
}

// key reads a possibly dotted, possibly quoted key.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.skipBlank(false)
		if s.eof() {
			return parts
		}
		var part string
		switch c := s.src[s.pos]; {
		case c == '"' || c == '\'':
			part = s.quotedKey(c)
		case isBareKeyChar(c):
			start := s.pos
			for !s.eof() && isBareKeyChar(s.src[s.pos]) {
				s.advance()
			}
			part = string(s.src[start:s.pos])
		default:
			return parts
		}
		parts = append(parts, part)
		s.skipBlank(false)
		if s.eof() || s.src[s.pos] != '.' {
			return parts
		}
		s.advance()
	}
}

func isBareKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// quotedKey reads a "basic" or 'literal' key, decoding the escapes of a
// basic one so that the path matches the key the TOML parser returns.
func (s *lineScanner) quotedKey(q byte) string {
	s.advance()
	var b strings.Builder
	for !s.eof() && s.src[s.pos] != q && s.src[s.pos] != '\n' {
		if q == '"' && s.src[s.pos] == '\\' && s.pos+1 < len(s.src) {
			s.advance()
			s.escape(&b)
			continue
		}
		b.WriteByte(s.src[s.pos])
		s.advance()
	}
	if !s.eof() && s.src[s.pos] == q {
		s.advance()
	}
	return b.String()
}

// escape decodes the escape sequence after a backslash (TOML 1.1 §String).
func (s *lineScanner) escape(b *strings.Builder) {
	c := s.src[s.pos]
	s.advance()
	hexLen := 0
	switch c {
	case 'b':
		b.WriteByte('\b')
	case 't':
		b.WriteByte('\t')
	case 'n':
		b.WriteByte('\n')
	case 'f':
		b.WriteByte('\f')
	case 'r':
		b.WriteByte('\r')
	case 'e':
		b.WriteByte(0x1b)
	case 'x':
		hexLen = 2
	case 'u':
		hexLen = 4
	case 'U':
		hexLen = 8
	default:
		b.WriteByte(c)
	}
	if hexLen == 0 || s.pos+hexLen > len(s.src) {
		return
	}
	r, err := strconv.ParseUint(string(s.src[s.pos:s.pos+hexLen]), 16, 32)
	if err != nil {
		return
	}
	for range hexLen {
		s.advance()
	}
	b.WriteRune(rune(r))
}

// keyValue reads "key = value" inside table and records both the key and
// everything nested in the value.
func (s *lineScanner) keyValue(table string) {
	parts := s.key()
	if len(parts) == 0 {
		return
	}
	path := joinPath(s.resolve(table, parts[:len(parts)-1]), parts[len(parts)-1])
	s.record(path)
	s.skipBlank(false)
	if s.eof() || s.src[s.pos] != '=' {
		return
	}
	s.advance()
	s.skipBlank(false)
	s.value(path)
}

// value skips one value, recording the keys of inline tables and the
// elements of arrays under path.
func (s *lineScanner) value(path string) {
	if s.eof() {
		return
	}
	switch c := s.src[s.pos]; c {
	case '{':
		s.elements('}', func(int) { s.keyValue(path) })
	case '[':
		s.elements(']', func(i int) {
			elem := indexPath(path, i)
			s.record(elem)
			s.value(elem)
		})
	case '"', '\'':
		s.str(c)
	default:
		start := s.pos
		for !s.eof() {
			switch s.src[s.pos] {
			case ' ':
				// A date and a time may be separated by one space
				// (1979-05-27 07:32:00): keep going inside the value.
				if s.pos-start == len("1979-05-27") && isDigit(s.peek(1)) {
					break
				}
				return
			case ',', ']', '}', '#', '\n', '\t', '\r':
				return
			}
			s.advance()
		}
	}
}

// elements reads the comma-separated elements of an inline table or an
// array, from its opening bracket to the closing one (end), calling each
// with the index of every element. It always advances, even on an element
// each cannot read.
func (s *lineScanner) elements(end byte, each func(i int)) {
	s.advance()
	for i := 0; !s.eof(); i++ {
		s.skipBlank(true)
		if s.eof() || s.src[s.pos] == end {
			break
		}
		start := s.pos
		each(i)
		s.skipBlank(true)
		if !s.eof() && s.src[s.pos] == ',' {
			s.advance()
		} else if s.pos == start {
			s.advance()
		}
	}
	if !s.eof() {
		s.advance()
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// str skips a basic, literal or multi-line string, counting the lines it
// spans.
func (s *lineScanner) str(q byte) {
	multi := s.peek(1) == q && s.peek(2) == q
	if multi {
		s.advance()
		s.advance()
	}
	s.advance()
	for !s.eof() {
		c := s.src[s.pos]
		switch {
		case c == '\\' && q == '"':
			s.advance()
			if !s.eof() {
				s.advance()
			}
			continue
		case c == '\n' && !multi:
			return
		case c == q && !multi:
			s.advance()
			return
		case c == q && s.peek(1) == q && s.peek(2) == q:
			// A multi-line string may end with up to two extra quotes
			// (""""" is a quote followed by the closing delimiter).
			for !s.eof() && s.src[s.pos] == q {
				s.advance()
			}
			return
		}
		s.advance()
	}
}
