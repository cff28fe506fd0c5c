package migrate

import "strings"

// Stmt is one statement of a braced config (radvd.conf, keepalived.conf):
// its words, and its block when it opens one.
type Stmt struct {
	Words []string
	Line  int
	Block []Stmt
	Open  bool // it had a { ... } block
}

func (s Stmt) key() string {
	if len(s.Words) == 0 {
		return ""
	}
	return s.Words[0]
}

func (s Stmt) text() string { return strings.Join(s.Words, " ") }

func (s Stmt) arg(i int) string {
	if i < len(s.Words) {
		return s.Words[i]
	}
	return ""
}

const (
	maxDepth = 16
	maxStmts = 20000
)

type token struct {
	s    string
	line int
}

// tokenize splits src into words and the punctuation "{", "}", ";" (and,
// with newlines, "\n" ends a statement). comment lists the characters that
// start a comment to the end of the line.
func tokenize(src []byte, comment string, newlines bool) []token {
	var toks []token
	line := 1
	var b strings.Builder
	inQ := false
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, token{b.String(), line})
			b.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inQ {
			if c == '"' {
				inQ = false
				flush()
				continue
			}
			if c == '\n' {
				inQ = false
				flush()
			} else {
				b.WriteByte(c)
				continue
			}
		}
		switch {
		case c == '"':
			flush()
			inQ = true
		case strings.IndexByte(comment, c) >= 0:
			flush()
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case c == '{' || c == '}' || c == ';':
			flush()
			toks = append(toks, token{string(c), line})
		case c == '\n':
			flush()
			if newlines {
				toks = append(toks, token{"\n", line})
			}
			line++
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		default:
			b.WriteByte(c)
		}
	}
	flush()
	return toks
}

// parseBlocks builds statements from tokens: words up to ";" or a newline
// (when newlines) end a statement, words followed by "{" open a block that
// "}" closes. Unbalanced braces are reported with their line.
func parseBlocks(name string, toks []token) ([]Stmt, error) {
	p := &blockParser{name: name, toks: toks}
	stmts, err := p.block(0)
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, &ParseError{name, p.toks[p.i].line, "unexpected }"}
	}
	return stmts, nil
}

type blockParser struct {
	name  string
	toks  []token
	i     int
	count int
}

func (p *blockParser) block(depth int) ([]Stmt, error) {
	if depth > maxDepth {
		return nil, &ParseError{p.name, p.toks[min(p.i, len(p.toks)-1)].line, "blocks nested too deep"}
	}
	var out []Stmt
	var cur Stmt
	end := func() {
		if len(cur.Words) > 0 || cur.Open {
			out = append(out, cur)
		}
		cur = Stmt{}
	}
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		p.i++
		p.count++
		if p.count > maxStmts {
			return nil, &ParseError{p.name, t.line, "too many statements"}
		}
		switch t.s {
		case ";", "\n":
			end()
		case "{":
			if cur.Line == 0 {
				cur.Line = t.line
			}
			b, err := p.block(depth + 1)
			if err != nil {
				return nil, err
			}
			if p.i > len(p.toks) || p.i == 0 || p.toks[p.i-1].s != "}" {
				return nil, &ParseError{p.name, cur.Line, "{ without }"}
			}
			cur.Block, cur.Open = b, true
			end()
		case "}":
			if depth == 0 {
				p.i--
				end()
				return out, nil
			}
			end()
			return out, nil
		default:
			if cur.Line == 0 {
				cur.Line = t.line
			}
			if len(cur.Words) < 1000 {
				cur.Words = append(cur.Words, t.s)
			}
		}
	}
	if depth > 0 {
		return nil, &ParseError{p.name, p.toks[len(p.toks)-1].line, "{ without }"}
	}
	end()
	return out, nil
}
