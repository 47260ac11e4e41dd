package pcapfilter

import (
	"slices"

	"golang.org/x/net/bpf"
)

// chainDepth bounds protochain: libpcap's program loops over the header
// chain (with a backward jump, which neither the kernel's verifier nor
// Translate allow); ours follows at most this many extension headers and
// rejects a packet with more.
const chainDepth = 8

// Classic BPF opcodes the generator uses.
const (
	ldAbs  = 0x00 | 0x20 // BPF_LD|BPF_ABS, plus size
	ldInd  = 0x00 | 0x40
	ldImm  = 0x00
	ldMem  = 0x60
	ldLen  = 0x80
	ldxImm = 0x01
	ldxMSH = 0x01 | 0xa0 | 0x10
	st     = 0x02
	opALU  = 0x04 // plus op and src
	aluX   = 0x08
	jmp    = 0x05
	jmpJA  = 0x05
	opRET  = 0x06
	tax    = 0x07
	txa    = 0x07 | 0x80
)

func sizeCode(size int) uint16 {
	switch size {
	case 4:
		return 0x00
	case 2:
		return 0x08
	}
	return 0x10
}

// insn is an instruction before layout: a conditional jump goes to
// labels jt and jf, "ja" to label jt.
type insn struct {
	op     uint16
	k      uint32
	jt, jf int
	cond   bool
	ja     bool
}

type gen struct {
	ins    []insn
	labels []int // label -> index in ins where it is placed
}

func (g *gen) label() int  { g.labels = append(g.labels, -1); return len(g.labels) - 1 }
func (g *gen) place(l int) { g.labels[l] = len(g.ins) }
func (g *gen) emit(op uint16, k uint32) {
	g.ins = append(g.ins, insn{op: op, k: k})
}
func (g *gen) jcond(op uint16, k uint32, t, f int) {
	g.ins = append(g.ins, insn{op: jmp | op, k: k, jt: t, jf: f, cond: true})
}
func (g *gen) jump(l int) { g.ins = append(g.ins, insn{op: jmpJA, jt: l, ja: true}) }

// bool lays out b: control goes to label t when it holds, f otherwise.
func (g *gen) bool(b *bnode, t, f int) {
	switch b.kind {
	case bConst:
		if b.val {
			g.jump(t)
		} else {
			g.jump(f)
		}
	case bNot:
		g.bool(b.l, f, t)
	case bAnd:
		m := g.label()
		g.bool(b.l, m, f)
		g.place(m)
		g.bool(b.r, t, f)
	case bOr:
		m := g.label()
		g.bool(b.l, t, m)
		g.place(m)
		g.bool(b.r, t, f)
	case bTest:
		g.load(b.t.ld)
		if b.t.hasMask {
			g.emit(opALU|aluAND, b.t.mask)
		}
		g.jcond(b.t.op, b.t.k, t, f)
	case bRel:
		r := b.rel
		g.arith(r.a0, 0)
		if r.a1.kind == aNum {
			if r.neg {
				g.jcond(r.op, r.a1.k, f, t)
			} else {
				g.jcond(r.op, r.a1.k, t, f)
			}
			return
		}
		g.emit(st, 0)
		g.arith(r.a1, 1)
		g.emit(tax, 0)
		g.emit(ldMem, 0)
		if r.neg {
			g.jcond(r.op|aluX, 0, f, t)
		} else {
			g.jcond(r.op|aluX, 0, t, f)
		}
	case bChain:
		g.chain(b.chain, t, f)
	}
}

func (g *gen) load(ld load) {
	if ld.length {
		g.emit(ldLen, 0)
		return
	}
	if ld.ind {
		g.emit(ldxMSH, 0)
		g.emit(ldInd|sizeCode(ld.size), ld.off)
		return
	}
	g.emit(ldAbs|sizeCode(ld.size), ld.off)
}

// maxDirect: an index below this is folded into the load's offset.
const maxDirect = 1 << 20

// arith computes a into A; M[d...] are free for it.
func (g *gen) arith(a *arith, d uint32) {
	switch a.kind {
	case aNum:
		g.emit(ldImm, a.k)
	case aLen:
		g.emit(ldLen, 0)
	case aNeg:
		g.arith(a.a, d)
		g.emit(opALU|aluNEG, 0)
	case aBin:
		g.arith(a.a, d)
		if a.b.kind == aNum {
			g.emit(opALU|a.alu, a.b.k)
			return
		}
		g.emit(st, d)
		g.arith(a.b, d+1)
		g.emit(tax, 0)
		g.emit(ldMem, d)
		g.emit(opALU|aluX|a.alu, 0)
	case aLoad:
		sz := sizeCode(a.size)
		idx := a.a
		direct := idx.kind == aNum && idx.k < maxDirect
		switch a.base {
		case baseNet:
			if direct {
				g.emit(ldAbs|sz, idx.k)
				return
			}
			g.arith(idx, d)
			g.emit(tax, 0)
			g.emit(ldInd|sz, 0)
		case baseICMP6:
			if direct {
				g.emit(ldAbs|sz, 40+idx.k)
				return
			}
			g.arith(idx, d)
			g.emit(tax, 0)
			g.emit(ldInd|sz, 40)
		case baseTransport:
			if direct {
				g.emit(ldxMSH, 0)
				g.emit(ldInd|sz, idx.k)
				return
			}
			// A = idx + IPv4 header length, in 32 bits as libpcap does.
			g.arith(idx, d)
			g.emit(st, d)
			g.emit(ldxMSH, 0)
			g.emit(ldMem, d)
			g.emit(opALU|aluX|aluADD, 0)
			g.emit(tax, 0)
			g.emit(ldInd|sz, 0)
		}
	}
}

// chain follows the header chain as libpcap's protochain program does,
// unrolled chainDepth times. IPv4: from ip[9] after the IPv4 header,
// through AH. IPv6: from the next header after the fixed header, through
// hop-by-hop (0), destination options (60), routing (43), fragment (44)
// and AH (51). 59 (no next header) ends it. Like libpcap's, the AH step
// sets X to (AH length + 2) * 4 alone, not added to where the AH header is.
func (g *gen) chain(c *chain, t, f int) {
	if c.v6 {
		g.emit(ldAbs|sizeCode(1), 6)
		g.emit(ldxImm, 40)
	} else {
		g.emit(ldAbs|sizeCode(1), 9)
		g.emit(ldxMSH, 0)
	}
	for i := 0; i < chainDepth; i++ {
		ext, ah, next := g.label(), g.label(), g.label()
		g.jcond(opJEQ, c.v, t, g.here())
		g.jcond(opJEQ, 59, f, g.here())
		if c.v6 {
			for _, h := range []uint32{0, 60, 43} {
				g.jcond(opJEQ, h, ext, g.here())
			}
			g.jcond(opJEQ, 44, ext, g.here())
		}
		g.jcond(opJEQ, 51, ah, f)
		if c.v6 {
			g.place(ext)
			g.emit(ldInd|sizeCode(1), 0)
			g.emit(st, 0)
			g.emit(ldInd|sizeCode(1), 1)
			g.emit(opALU|aluADD, 1)
			g.emit(opALU|aluMUL, 8)
			g.emit(opALU|aluX|aluADD, 0)
			g.emit(tax, 0)
			g.emit(ldMem, 0)
			g.jump(next)
		}
		g.place(ah)
		g.emit(ldInd|sizeCode(1), 0)
		g.emit(st, 0)
		g.emit(ldInd|sizeCode(1), 1)
		g.emit(opALU|aluADD, 2)
		g.emit(opALU|aluMUL, 4)
		g.emit(tax, 0)
		g.emit(ldMem, 0)
		g.place(next)
	}
	g.jump(f)
}

// here is a label placed at the next instruction.
func (g *gen) here() int {
	l := g.label()
	g.labels[l] = -2 - len(g.ins) // resolved to the instruction after the one being emitted
	return l
}

// assemble lays the program out, with a jump that is too long for a
// conditional jump's 8-bit offset going through unconditional jumps.
func (g *gen) assemble() []bpf.RawInstruction {
	at := func(l int) int {
		if p := g.labels[l]; p <= -2 {
			return -2 - p + 1
		}
		return g.labels[l]
	}
	long := make([]bool, len(g.ins))
	var pos []int
	for {
		pos = make([]int, len(g.ins)+1)
		n := 0
		for i := range g.ins {
			pos[i] = n
			n++
			if long[i] {
				n += 2
			}
		}
		pos[len(g.ins)] = n
		changed := false
		for i, in := range g.ins {
			if in.cond && !long[i] {
				if pos[at(in.jt)]-pos[i]-1 > 255 || pos[at(in.jf)]-pos[i]-1 > 255 {
					long[i] = true
					changed = true
				}
			}
		}
		if !changed {
			break
		}
	}
	out := make([]bpf.RawInstruction, 0, pos[len(g.ins)])
	for i, in := range g.ins {
		switch {
		case in.ja:
			out = append(out, bpf.RawInstruction{Op: in.op, K: uint32(pos[at(in.jt)] - pos[i] - 1)})
		case in.cond && long[i]:
			out = append(out, bpf.RawInstruction{Op: in.op, K: in.k, Jt: 0, Jf: 1},
				bpf.RawInstruction{Op: jmpJA, K: uint32(pos[at(in.jt)] - pos[i] - 2)},
				bpf.RawInstruction{Op: jmpJA, K: uint32(pos[at(in.jf)] - pos[i] - 3)})
		case in.cond:
			out = append(out, bpf.RawInstruction{Op: in.op, K: in.k,
				Jt: uint8(pos[at(in.jt)] - pos[i] - 1), Jf: uint8(pos[at(in.jf)] - pos[i] - 1)})
		default:
			out = append(out, bpf.RawInstruction{Op: in.op, K: in.k})
		}
	}
	return out
}

// generate compiles b into a program that returns SnapLen for a packet
// b accepts and 0 otherwise; ok is false when b accepts no packet.
func generate(b *bnode) (prog []bpf.RawInstruction, ok bool) {
	f := &flow{}
	f.accept, f.rej = f.newBlk(), f.newBlk()
	f.accept.ret, f.accept.accept, f.rej.ret = true, true, true
	if hasChain(b) {
		// libpcap does not optimize a program with protochain (its
		// loop jumps back), nor refuse one that rejects everything.
		f.root = f.build(b, f.accept, f.rej)
	} else {
		f.root = f.build(normalize(b), f.accept, f.rej)
		f.optimize()
		if f.root == f.rej {
			return nil, false
		}
	}
	g := &gen{}
	labels := map[*blk]int{}
	lbl := func(b *blk) int {
		b = skipLate(b)
		l, ok := labels[b]
		if !ok {
			l = g.label()
			labels[b] = l
		}
		return l
	}
	for _, b := range f.blocks {
		if !b.ret {
			b.jt, b.jf = skipLate(b.jt), skipLate(b.jf)
		}
	}
	f.intern()
	f.analyse() // the predecessors
	order := f.reachable()
	slices.Reverse(order)
	rets := 0
	for _, b := range order {
		if b.ret {
			rets++
			continue
		}
		g.place(lbl(b))
		t, e := lbl(b.jt), lbl(b.jf)
		if b.t != nil {
			// A still holds the value when every way here is a test
			// of the same value (tests change neither A nor X).
			reuse := len(b.preds) > 0
			for _, p := range b.preds {
				reuse = reuse && p.b.t != nil && p.b.sameValue(b)
			}
			if reuse {
				g.jcond(b.t.op, b.t.k, t, e)
				continue
			}
			g.bool(&bnode{kind: bTest, t: *b.t}, t, e)
		} else {
			g.bool(b.node, t, e)
		}
	}
	for _, b := range []*blk{f.accept, f.rej} { // the returns that can be reached
		if slices.Contains(order, b) {
			g.place(lbl(b))
			g.emit(opRET, map[bool]uint32{true: SnapLen, false: 0}[b.accept])
		}
	}
	return g.assemble(), true
}

func hasChain(b *bnode) bool {
	switch b.kind {
	case bChain:
		return true
	case bAnd, bOr:
		return hasChain(b.l) || hasChain(b.r)
	case bNot:
		return hasChain(b.l)
	}
	return false
}

// normalize rewrites b the way libpcap's peephole optimizer rewrites its
// blocks, so that the flow optimization sees the same tests: a relation
// of a load (and a mask) with a constant is a test; "x & m = 0" is "not
// x & m"; a relation of constants is a constant.
func normalize(b *bnode) *bnode {
	switch b.kind {
	case bAnd, bOr:
		return &bnode{kind: b.kind, l: normalize(b.l), r: normalize(b.r)}
	case bNot:
		return not(normalize(b.l))
	case bTest:
		if b.t.hasMask && b.t.op == opJEQ && b.t.k == 0 { // mask 0 too: jset #0 never holds
			t := b.t
			t.hasMask, t.op, t.k = false, opJSET, t.mask
			t.mask = 0
			return not(&bnode{kind: bTest, t: t})
		}
	case bRel:
		b0 := b
		r := &relation{a0: simplify(b.rel.a0), a1: simplify(b.rel.a1), op: b.rel.op, neg: b.rel.neg}
		lit := b.rel.a0.kind == aNum && b.rel.a1.kind == aNum // decided early; others late
		b = &bnode{kind: bRel, rel: r}
		x, ok1 := constValue(r.a0)
		y, ok2 := constValue(r.a1)
		if ok1 && ok2 && lit {
			var c bool
			switch r.op {
			case opJEQ:
				c = x == y
			case opJGT:
				c = x > y
			case opJGE:
				c = x >= y
			}
			return &bnode{kind: bConst, val: c != r.neg}
		}
		if orig := b0.rel; orig.a1.kind == aNum {
			a0 := orig.a0
			t := test{op: r.op, k: r.a1.k, tag: true}
			if a0.kind == aBin && a0.alu == aluAND && a0.b.kind == aNum {
				t.hasMask, t.mask = true, a0.b.k
				a0 = a0.a
			}
			if ld, ok := directLoad(a0); ok {
				t.ld = ld
				n := normalize(&bnode{kind: bTest, t: t})
				if r.neg {
					return not(n)
				}
				return n
			}
		}
	}
	return b
}

// simplify folds constants as libpcap's optimizer does, which also drops
// the loads whose value no longer matters: x * 0 and x & 0 are 0, so are
// 0 << x, 0 / x and the like; x + 0 and 0 + x are x.
func simplify(a *arith) *arith {
	switch a.kind {
	case aNeg:
		x := simplify(a.a)
		if x.kind == aNum {
			return &arith{kind: aNum, k: -x.k}
		}
		return &arith{kind: aNeg, a: x}
	case aLoad:
		c := *a
		c.a = simplify(a.a)
		return &c
	case aBin:
		x, y := simplify(a.a), simplify(a.b)
		if x.kind == aNum && y.kind == aNum {
			if v, ok := alu(a.alu, x.k, y.k); ok {
				return &arith{kind: aNum, k: v}
			}
		}
		if y.kind == aNum && y.k == 0 {
			switch a.alu {
			case aluADD, aluLSH, aluRSH, aluOR, aluXOR:
				return x
			case aluMUL, aluAND:
				return y
			}
		}
		if x.kind == aNum && x.k == 0 {
			switch a.alu {
			case aluADD, aluOR, aluXOR:
				return y
			case aluMUL, aluDIV, aluMOD, aluAND, aluLSH, aluRSH:
				return x
			}
		}
		return &arith{kind: aBin, alu: a.alu, a: x, b: y}
	}
	return a
}

// directLoad: a load at a constant index, as a test's load.
func directLoad(a *arith) (load, bool) {
	if a.kind == aLen {
		return load{length: true}, true
	}
	if a.kind != aLoad || a.a.kind != aNum || a.a.k >= maxDirect {
		return load{}, false
	}
	switch a.base {
	case baseNet:
		return load{size: a.size, off: a.a.k}, true
	case baseICMP6:
		return load{size: a.size, off: 40 + a.a.k}, true
	}
	return load{size: a.size, off: a.a.k, ind: true}, true
}
