package migrate

import (
	"bufio"
	"bytes"
	"net"
	"regexp"
	"strings"
)

// Keepalived is a parsed keepalived.conf: the statement tree, with the
// parts v6edge cares about picked out.
type Keepalived struct {
	Global    []Stmt // global_defs
	Instances []Stmt // vrrp_instance NAME { ... }
	Scripts   []Stmt // vrrp_script NAME { ... }
	Other     []Stmt // everything else at the top (virtual_server, sync groups, ...)
}

// ParseKeepalived parses a keepalived.conf. include is kept as a statement
// (Other): the importer does not read other files.
func ParseKeepalived(name string, data []byte) (*Keepalived, error) {
	if err := checkSize(name, data); err != nil {
		return nil, err
	}
	stmts, err := parseBlocks(name, tokenize(data, "#!", true))
	if err != nil {
		return nil, err
	}
	k := &Keepalived{}
	for _, s := range stmts {
		switch {
		case s.key() == "global_defs" && s.Open:
			k.Global = append(k.Global, s.Block...)
		case s.key() == "vrrp_instance" && s.Open:
			k.Instances = append(k.Instances, s)
		case s.key() == "vrrp_script" && s.Open:
			k.Scripts = append(k.Scripts, s)
		default:
			k.Other = append(k.Other, s)
		}
	}
	return k, nil
}

var macRe = regexp.MustCompile(`(?i)\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b`)

// NotifyMAC finds the MAC a keepalived notify script gives an interface
// when it becomes master: a MAC on an "ip link set ... address" or in the
// master branch of a case, else the only MAC of the script. It returns ""
// when it cannot tell.
func NotifyMAC(data []byte) string {
	if len(data) > MaxInput {
		return ""
	}
	var all, master []string
	inMaster := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), MaxInput+1)
	for sc.Scan() {
		t := strings.TrimSpace(stripShellComment(sc.Text()))
		if m := casePattern.FindString(t); m != "" {
			inMaster = strings.Contains(strings.ToLower(m), "master")
		}
		if t == ";;" || t == "esac" {
			inMaster = false
		}
		for _, m := range macRe.FindAllString(t, -1) {
			hw, err := net.ParseMAC(m)
			if err != nil || hw[0]&1 == 1 {
				continue
			}
			s := hw.String()
			if inMaster && !contains(master, s) {
				master = append(master, s)
			}
			if !contains(all, s) {
				all = append(all, s)
			}
		}
	}
	switch {
	case len(master) == 1:
		return master[0]
	case len(master) == 0 && len(all) == 1:
		return all[0]
	}
	return ""
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
