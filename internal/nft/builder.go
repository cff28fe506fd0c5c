package nft

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables/expr"
)

// Builder writes one rule's nft text and its expressions side by side, so
// that the two cannot disagree. Packages embed it and add the matches of
// their own rules.
type Builder struct {
	Words []string
	Exprs []expr.Any
}

// String is the rule as nft list table prints it.
func (b *Builder) String() string { return strings.Join(b.Words, " ") }

// Add appends word to the text and the expressions it stands for.
func (b *Builder) Add(word string, exprs ...expr.Any) {
	b.Words = append(b.Words, word)
	b.Exprs = append(b.Exprs, exprs...)
}

// IfName matches an interface name: word is "iifname" or "oifname" (key
// MetaKeyIIFNAME or MetaKeyOIFNAME), op CmpOpEq or CmpOpNeq.
func (b *Builder) IfName(key expr.MetaKey, word string, op expr.CmpOp, name string) {
	text := fmt.Sprintf("%s %q", word, name)
	if op == expr.CmpOpNeq {
		text = fmt.Sprintf("%s != %q", word, name)
	}
	data := make([]byte, IfNameSize) // NUL padded, as the kernel compares it
	copy(data, name)
	b.Add(text,
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: data})
}

// IfNameSize is IFNAMSIZ: interface names travel to the kernel NUL padded
// to 16 bytes.
const IfNameSize = 16

// CtMarkSet sets the connection's mark.
func (b *Builder) CtMarkSet(mark uint32) {
	b.Add(fmt.Sprintf("ct mark set 0x%08x", mark),
		&expr.Immediate{Register: 1, Data: U32(mark)},
		&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true})
}

// U32 encodes a mark or a ct status: the kernel keeps them as host-order
// u32.
func U32(v uint32) []byte {
	return binary.NativeEndian.AppendUint32(nil, v)
}
