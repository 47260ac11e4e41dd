package pcapfilter

import (
	"fmt"
	"slices"
)

// The flow graph and its optimization. libpcap optimizes its programs, and
// an optimization that drops a test also drops its load, which changes
// what a truncated packet gives (a load beyond the packet rejects it). So
// that verdicts stay libpcap's, the same transformations run here, on
// blocks of one test each:
//
//   - a test whose outcome a dominating test decides (the same test on the
//     same value, or == another constant after ==) is jumped over;
//   - a test on a constant (a mask of 0) is decided;
//   - a test whose two branches meet is dropped;
//   - "or" and "and" chains are reordered to test a value again before
//     loading another (libpcap's or_pullup and and_pullup).
//
// The same pass decides that an expression can match nothing ("expression
// rejects all packets"), as libpcap refuses it.

type blk struct {
	id     int
	ret    bool // a return block
	accept bool
	t      *test  // a test block
	node   *bnode // an opaque block: a relation or protochain
	jt, jf *blk

	late  bool // decided after the flow optimization (see late)
	level int
	dom   []uint64 // blocks that dominate this one
	preds []edge
}

type edge struct {
	b     *blk
	sense bool // the true branch
}

func (e edge) succ() *blk {
	if e.sense {
		return e.b.jt
	}
	return e.b.jf
}

func (e edge) set(s *blk) {
	if e.sense {
		e.b.jt = s
	} else {
		e.b.jf = s
	}
}

type flow struct {
	blocks      []*blk
	root        *blk
	accept, rej *blk
	opaque      int // value numbers of opaque blocks
}

func (f *flow) newBlk() *blk {
	b := &blk{id: len(f.blocks)}
	f.blocks = append(f.blocks, b)
	return b
}

// build makes the blocks of b, going to t or e.
func (f *flow) build(b *bnode, t, e *blk) *blk {
	switch b.kind {
	case bConst:
		if b.val {
			return t
		}
		return e
	case bNot:
		return f.build(b.l, e, t)
	case bAnd:
		return f.build(b.l, f.build(b.r, t, e), e)
	case bOr:
		return f.build(b.l, t, f.build(b.r, t, e))
	case bTest:
		n := f.newBlk()
		tt := b.t
		n.t, n.jt, n.jf = &tt, t, e
		return n
	}
	n := f.newBlk()
	if b.kind == bRel && b.rel.neg { // the jump is the relation's; not swaps the branches
		r := *b.rel
		r.neg = false
		b = &bnode{kind: bRel, rel: &r}
		t, e = e, t
	}
	n.node, n.jt, n.jf = b, t, e
	return n
}

// jumpOf is what a block's jump compares, as libpcap's optimizer sees it:
// the value in A (a key standing for its value number), the operation,
// and the constant or (xk) the value in X. ok is false for blocks that
// compare nothing the optimizer can relate.
func (b *blk) jumpOf() (vk string, op uint16, k uint32, xk string, ok bool) {
	switch {
	case b.ret:
		return "", 0, 0, "", false
	case b.t != nil:
		t := b.t
		vk = fmt.Sprintf("%v/%v/%d", t.ld, t.hasMask, t.mask)
		if t.tag {
			vk = "rel:" + vk
		}
		return vk, t.op, t.k, "", true
	case b.node.kind == bRel:
		r := b.node.rel
		vk = "rel:" + canon(r.a0)
		if r.a1.kind == aNum {
			return vk, r.op, r.a1.k, "", true
		}
		return vk, r.op, 0, canon(r.a1), true
	}
	return "", 0, 0, "", false
}

// canon names an expression's value: the same for the same computation.
func canon(a *arith) string {
	switch a.kind {
	case aNum:
		return fmt.Sprintf("#%d", a.k)
	case aLen:
		return "len"
	case aNeg:
		return "-(" + canon(a.a) + ")"
	case aLoad:
		return fmt.Sprintf("ld%d.%d[%s]", a.base, a.size, canon(a.a))
	}
	return fmt.Sprintf("(%s %d %s)", canon(a.a), a.alu, canon(a.b))
}

// sameValue: two blocks test the same value (libpcap's value numbers).
func (b *blk) sameValue(c *blk) bool {
	v1, _, _, _, ok1 := b.jumpOf()
	v2, _, _, _, ok2 := c.jumpOf()
	if !ok1 || !ok2 {
		return b == c && !b.ret
	}
	return v1 == v2
}

// follow skips blocks whose branches meet.
func follow(b *blk) *blk {
	for b.skippable() {
		b = b.jt
	}
	return b
}

// skippable: a block whose branches meet, but protochain's, whose loop
// libpcap keeps (its loads too) whatever follows it.
func (b *blk) skippable() bool {
	return !b.ret && b.jt == b.jf && (b.node == nil || b.node.kind != bChain)
}

func (f *flow) reachable() []*blk {
	seen := map[*blk]bool{}
	var order []*blk // post order: successors first
	var walk func(b *blk)
	walk = func(b *blk) {
		if seen[b] {
			return
		}
		seen[b] = true
		if !b.ret {
			walk(b.jt)
			walk(b.jf)
		}
		order = append(order, b)
	}
	walk(f.root)
	return order
}

// analyse computes levels, predecessors and dominators of the reachable
// blocks, and returns them in topological order (root first).
func (f *flow) analyse() []*blk {
	post := f.reachable()
	words := (len(f.blocks) + 63) / 64
	for _, b := range post {
		b.preds = b.preds[:0]
		b.level = 0
		if !b.ret {
			b.level = 1 + max(b.jt.level, b.jf.level)
		}
	}
	topo := slices.Clone(post)
	slices.Reverse(topo)
	for _, b := range topo {
		if !b.ret {
			b.jt.preds = append(b.jt.preds, edge{b, true})
			b.jf.preds = append(b.jf.preds, edge{b, false})
		}
	}
	for _, b := range topo {
		b.dom = make([]uint64, words)
		if b == f.root {
			b.dom[b.id/64] |= 1 << (b.id % 64)
			continue
		}
		for i := range b.dom {
			b.dom[i] = ^uint64(0)
		}
		for _, p := range b.preds {
			for i := range b.dom {
				b.dom[i] &= p.b.dom[i]
			}
		}
		b.dom[b.id/64] |= 1 << (b.id % 64)
	}
	return topo
}

func (b *blk) dominatedBy(a *blk) bool { return b.dom[a.id/64]&(1<<(a.id%64)) != 0 }

// edoms computes each edge's dominating edges (itself included).
func edoms(topo []*blk, root *blk) map[edge][]edge {
	in := map[*blk][]edge{}
	out := map[edge][]edge{}
	for _, b := range topo {
		if b.ret {
			continue
		}
		var base []edge
		if b != root {
			for i, p := range b.preds {
				pe := out[p]
				if i == 0 {
					base = slices.Clone(pe)
					continue
				}
				base = slices.DeleteFunc(base, func(e edge) bool { return !slices.Contains(pe, e) })
			}
		}
		in[b] = base
		for _, s := range []bool{true, false} {
			e := edge{b, s}
			out[e] = append(slices.Clone(base), e)
		}
	}
	return out
}

// foldEdge: where child goes when the dominating edge d was taken, or nil
// if d does not decide it.
func foldEdge(child *blk, d edge) *blk {
	cv, cop, ck, cx, ok1 := child.jumpOf()
	dv, dop, dk, dx, ok2 := d.b.jumpOf()
	if !ok1 || !ok2 || cv != dv || cop != dop || (cx == "") != (dx == "") {
		return nil
	}
	if ck == dk && cx == dx {
		if d.sense {
			return child.jt
		}
		return child.jf
	}
	if d.sense && cop == opJEQ && cx == "" {
		return child.jf
	}
	return nil
}

// constant decides the tests libpcap's first optimization pass decides:
// "jset #0" never holds, "jset #0xffffffff" of a whole value always does.
func constant(b *blk) bool {
	if b.ret || b.t == nil || b.jt == b.jf || b.t.op != opJSET {
		return false
	}
	switch {
	case b.t.k == 0:
		b.jt = b.jf
	case b.t.k == 0xffffffff && !b.t.hasMask:
		b.jf = b.jt
	default:
		return false
	}
	return true
}

// late is the outcome of a block that libpcap decides only when it folds
// constants, after it has moved the jumps: a relation whose sides fold to
// constants ("32 = -0", "x * 0 = 1"), a test of a value masked with 0.
// Such a block is then passed over, but what leads to it stays.
func late(b *blk) (val, ok bool) {
	switch {
	case b.ret:
	case b.t != nil && b.t.hasMask && b.t.mask == 0:
		switch b.t.op {
		case opJEQ:
			return b.t.k == 0, true
		case opJGT:
			return false, true
		case opJGE:
			return b.t.k == 0, true
		}
		return false, true
	case b.node != nil && b.node.kind == bRel:
		x, ok1 := constValue(b.node.rel.a0)
		y, ok2 := constValue(b.node.rel.a1)
		if ok1 && ok2 {
			var c bool
			switch b.node.rel.op {
			case opJEQ:
				c = x == y
			case opJGT:
				c = x > y
			case opJGE:
				c = x >= y
			}
			return c != b.node.rel.neg, true
		}
	}
	return false, false
}

func (f *flow) optimize() {
	for range 1000 {
		done := true
		topo := f.analyse()
		for _, b := range topo {
			if constant(b) {
				done = false
			}
		}
		if !done {
			continue
		}
		ed := edoms(topo, f.root)
		byLevel := slices.Clone(topo)
		slices.SortStableFunc(byLevel, func(a, b *blk) int { return a.level - b.level })
		for _, b := range byLevel {
			if b.ret {
				continue
			}
			for _, s := range []bool{true, false} {
				if f.optJ(edge{b, s}, ed[edge{b, s}]) {
					done = false
				}
			}
		}
		if !done {
			continue
		}
		topo = f.analyse()
		byLevel = slices.Clone(topo)
		slices.SortStableFunc(byLevel, func(a, b *blk) int { return a.level - b.level })
		for _, b := range byLevel {
			if b.ret || b == f.root {
				continue
			}
			if f.pullup(b, false) || f.pullup(b, true) {
				done = false
				break
			}
		}
		if done {
			break
		}
	}
	for _, b := range f.blocks {
		if v, ok := late(b); ok && !b.ret {
			if v {
				b.jf = b.jt
			} else {
				b.jt = b.jf
			}
			b.late = true
		}
	}
	// libpcap's opt_root: from the root, pass every block whose branches
	// meet.
	f.root = follow(f.root)
}

// skipLate passes the blocks decided late.
func skipLate(b *blk) *blk {
	for b.late {
		b = b.jt
	}
	return b
}

// optJ moves edge e past blocks whose outcome is known.
func (f *flow) optJ(e edge, doms []edge) bool {
	changed := false
	for {
		s := e.succ()
		if s.ret {
			return changed
		}
		if s.skippable() {
			e.set(s.jt)
			changed = true
			continue
		}
		moved := false
		for _, d := range doms {
			if t := foldEdge(s, d); t != nil {
				e.set(t)
				changed, moved = true, true
				break
			}
		}
		if !moved {
			return changed
		}
	}
}

// pullup is libpcap's or_pullup (and, with isAnd, and_pullup): in a chain
// of blocks going to the same place on success (or failure), a later test
// of the value the predecessors tested moves up before the first test of
// another value.
func (f *flow) pullup(b *blk, isAnd bool) bool {
	if len(b.preds) == 0 {
		return false
	}
	val := b.preds[0].b
	for _, p := range b.preds[1:] {
		if !p.b.sameValue(val) {
			return false
		}
	}
	same := func(x *blk) *blk { // the branch the chain shares
		if isAnd {
			return x.jf
		}
		return x.jt
	}
	next := func(x *blk) *blk {
		if isAnd {
			return x.jt
		}
		return x.jf
	}
	setNext := func(x, to *blk) {
		if isAnd {
			x.jt = to
		} else {
			x.jf = to
		}
	}
	var parent *blk // whose next is diff; nil at the top
	diff := b
	for {
		if diff.ret || same(diff) != same(b) || !diff.dominatedBy(b) {
			return false
		}
		if !diff.sameValue(val) {
			break
		}
		parent = diff
		diff = next(diff)
	}
	var sparent = diff
	samep := next(diff)
	for {
		if samep.ret || same(samep) != same(b) || !samep.dominatedBy(b) {
			return false
		}
		if samep.sameValue(val) {
			break
		}
		sparent = samep
		samep = next(samep)
	}
	pull := samep
	setNext(sparent, next(pull))
	setNext(pull, diff)
	if parent == nil {
		for _, p := range b.preds {
			if p.succ() == b {
				p.set(pull)
			}
		}
	} else {
		setNext(parent, pull)
	}
	return true
}

// intern merges blocks that make the same test with the same successors
// (libpcap's intern_blocks): the alternatives of "port 53" for TCP, UDP
// and SCTP end in the same port tests. It changes no verdict.
func (f *flow) intern() {
	type key struct {
		t      test
		jt, jf *blk
	}
	for changed := true; changed; {
		changed = false
		canon := map[key]*blk{}
		repl := map[*blk]*blk{}
		for _, b := range f.reachable() { // successors first
			if b.ret || b.t == nil {
				continue
			}
			if r, ok := repl[b.jt]; ok {
				b.jt = r
			}
			if r, ok := repl[b.jf]; ok {
				b.jf = r
			}
			k := key{*b.t, b.jt, b.jf}
			if c, ok := canon[k]; ok && c != b {
				repl[b] = c
				changed = true
				continue
			}
			canon[k] = b
		}
		for _, b := range f.blocks {
			if b.ret {
				continue
			}
			if r, ok := repl[b.jt]; ok {
				b.jt = r
			}
			if r, ok := repl[b.jf]; ok {
				b.jf = r
			}
		}
		if r, ok := repl[f.root]; ok {
			f.root = r
		}
	}
}
