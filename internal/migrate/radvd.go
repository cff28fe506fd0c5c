package migrate

import (
	"strings"
)

// Radvd is a parsed radvd.conf: its interface blocks.
type Radvd struct {
	Interfaces []RadvdIface
}

// RadvdIface is one interface block.
type RadvdIface struct {
	Name     string
	Line     int
	Options  []Stmt // "Key value" statements of the block itself
	Prefixes []Stmt // prefix P { ... }
	Routes   []Stmt
	RDNSS    []Stmt
	DNSSL    []Stmt
	Other    []Stmt // clients, AdvRASrcAddress, abro, nat64prefix, lowpanco
}

// Option returns the value of the block option key (case-insensitive, as
// radvd reads them) and its statement.
func (r RadvdIface) Option(key string) (string, Stmt, bool) {
	return option(r.Options, key)
}

func option(stmts []Stmt, key string) (string, Stmt, bool) {
	for _, s := range stmts {
		if strings.EqualFold(s.key(), key) && !s.Open {
			return strings.Join(s.Words[1:], " "), s, true
		}
	}
	return "", Stmt{}, false
}

// ParseRadvd parses a radvd.conf (radvd.conf(5) syntax).
func ParseRadvd(name string, data []byte) (*Radvd, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	stmts, err := parseBlocks(name, tokenize(data, "#", false))
	if err != nil {
		return nil, err
	}
	r := &Radvd{}
	for _, s := range stmts {
		if s.key() != "interface" || len(s.Words) != 2 || !s.Open {
			return nil, &ParseError{name, s.Line, "expected interface NAME { ... }, got " + oneLine(s.text())}
		}
		ifc := RadvdIface{Name: s.Words[1], Line: s.Line}
		for _, o := range s.Block {
			switch {
			case o.key() == "prefix" && o.Open && len(o.Words) == 2:
				ifc.Prefixes = append(ifc.Prefixes, o)
			case o.key() == "route" && o.Open && len(o.Words) == 2:
				ifc.Routes = append(ifc.Routes, o)
			case o.key() == "RDNSS" && o.Open && len(o.Words) >= 2:
				ifc.RDNSS = append(ifc.RDNSS, o)
			case o.key() == "DNSSL" && o.Open && len(o.Words) >= 2:
				ifc.DNSSL = append(ifc.DNSSL, o)
			case o.Open:
				ifc.Other = append(ifc.Other, o)
			case len(o.Words) >= 2:
				ifc.Options = append(ifc.Options, o)
			default:
				return nil, &ParseError{name, o.Line, "expected Option value;, got " + oneLine(o.text())}
			}
		}
		r.Interfaces = append(r.Interfaces, ifc)
	}
	return r, nil
}
