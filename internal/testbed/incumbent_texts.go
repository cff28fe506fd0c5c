package testbed

import "strings"

// IncumbentTexts returns the incumbent single router's dhcpcd.conf, NETMAP
// hook and radvd.conf as RunIncumbent writes them (with hookPath as
// dhcpcd's script and the lab's default /56), for tests that read them
// without a lab (`v6edge import`).
func IncumbentTexts(hookPath string) (dhcpcdConf, hook, radvdConf string) {
	hook = strings.NewReplacer("INTERNAL", DefaultInternal.String(), "WAN", WANIface).Replace(incumbentHook)
	dhcpcdConf = incumbentDhcpcdConf("incumbent: dhcpcd as a DHCPv6-PD client only", hookPath, false, 56)
	return dhcpcdConf, hook, incumbentRadvdConf("")
}

// PairIncTexts returns the files of an incumbent HA node in dir, by path,
// as PairIncStart writes them (for a /56 delegation).
func PairIncTexts(dir string, o PairIncOptions) map[string]string {
	return pairIncFiles(dir, o, 56)
}
