package pcapfilter

// The compiler turns an expression into a tree of tests (bnode) that the
// code generator lays out as classic BPF, libpcap's way: every primitive
// becomes the same loads and comparisons in the same order as libpcap
// makes them, so a load beyond the packet rejects the packet in the same
// cases.

// load reads size bytes at off from the IP header, or (ind) from the
// transport header of an IPv4 packet: X = 4*(ip[0]&0xf), then [X+off].
type load struct {
	size   int
	off    uint32
	ind    bool
	length bool // not a load: the packet's length ("len")
}

// Jump operations of a test (classic BPF's).
const (
	opJEQ  = 0x10
	opJGT  = 0x20
	opJGE  = 0x30
	opJSET = 0x40
)

// test is a leaf: load, optionally AND a mask, compare with k.
type test struct {
	ld      load
	hasMask bool
	mask    uint32
	op      uint16
	k       uint32
	// tag: made from a relation ("ip[9] = 6"), whose load libpcap's
	// optimizer numbers apart from the same load of a primitive ("tcp").
	tag bool
}

type bkind int

const (
	bTest bkind = iota
	bAnd
	bOr
	bNot
	bConst
	bRel
	bChain
)

// bnode is a boolean expression over the packet.
type bnode struct {
	kind  bkind
	l, r  *bnode // bAnd, bOr; l for bNot
	t     test   // bTest
	val   bool   // bConst
	rel   *relation
	chain *chain
}

// relation compares two arithmetic expressions (unsigned, 32 bits).
type relation struct {
	a0, a1 *arith
	op     uint16 // opJEQ, opJGT, opJGE
	neg    bool
}

// chain is protochain: follow the IPv4 (AH) or IPv6 (extension headers
// and AH) header chain looking for protocol v.
type chain struct {
	v  uint32
	v6 bool
}

type akind int

const (
	aNum akind = iota
	aLen
	aLoad
	aBin
	aNeg
)

// Bases of an indexed load.
const (
	baseNet       = iota // ip[], ip6[]: from the IP header
	baseTransport        // tcp[], udp[], ...: after the IPv4 header (its length from ip[0])
	baseICMP6            // icmp6[]: 40 bytes after the IPv6 header's start
)

// arith is an arithmetic expression (a value of 32 bits).
type arith struct {
	kind akind
	k    uint32 // aNum
	alu  uint16 // aBin: classic BPF ALU operation
	a, b *arith // aBin; a: aNeg, and the index of aLoad
	size int    // aLoad
	base int    // aLoad
}

// ALU operations (classic BPF's).
const (
	aluADD = 0x00
	aluSUB = 0x10
	aluMUL = 0x20
	aluDIV = 0x30
	aluOR  = 0x40
	aluAND = 0x50
	aluLSH = 0x60
	aluRSH = 0x70
	aluNEG = 0x80
	aluMOD = 0x90
	aluXOR = 0xa0
)

func and(l, r *bnode) *bnode {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	}
	return &bnode{kind: bAnd, l: l, r: r}
}

func or(l, r *bnode) *bnode { return &bnode{kind: bOr, l: l, r: r} }

func not(x *bnode) *bnode { return &bnode{kind: bNot, l: x} }

func ands(xs ...*bnode) *bnode {
	var b *bnode
	for _, x := range xs {
		b = and(b, x)
	}
	return b
}

func ors(xs ...*bnode) *bnode {
	b := xs[0]
	for _, x := range xs[1:] {
		b = or(b, x)
	}
	return b
}

// cmp: size bytes at off == k.
func cmp(size int, off uint32, k uint32) *bnode {
	return &bnode{kind: bTest, t: test{ld: load{size: size, off: off}, op: opJEQ, k: k}}
}

// mcmp: (size bytes at off) & mask == k; no AND for a full mask.
func mcmp(size int, off, mask, k uint32) *bnode {
	n := cmp(size, off, k)
	if mask != 0xffffffff {
		n.t.hasMask, n.t.mask = true, mask
	}
	return n
}

func ltest(ld load, op uint16, k uint32) *bnode {
	return &bnode{kind: bTest, t: test{ld: ld, op: op, k: k}}
}

// isIP4 and isIP6 test the version nibble, as libpcap does for DLT_RAW.
func isIP4() *bnode { return mcmp(1, 0, 0xf0, 0x40) }
func isIP6() *bnode { return mcmp(1, 0, 0xf0, 0x60) }

// notLaterFragment: an IPv4 packet whose fragment offset is 0.
func notLaterFragment() *bnode { return not(ltest(load{size: 2, off: 6}, opJSET, 0x1fff)) }
