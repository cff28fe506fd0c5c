package nat

import (
	"strconv"

	"github.com/google/nftables"
)

func itoa(h uint64) string { return strconv.FormatUint(h, 10) }

var testTable = &nftables.Table{Name: DefaultName, Family: nftables.TableFamilyIPv6}

func chainRef(name string) *nftables.Chain { return &nftables.Chain{Name: name, Table: testTable} }

func ruleRef(chain string, h uint64) *nftables.Rule {
	return &nftables.Rule{Table: testTable, Chain: chainRef(chain), Handle: h}
}

func nftablesSrcNAT() *nftables.ChainPriority { return nftables.ChainPriorityNATSource }
