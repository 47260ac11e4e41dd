package pcapfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// proto is a protocol qualifier (or a protocol name used alone).
type proto int

const (
	pDefault proto = iota
	pIP
	pIP6
	pTCP
	pUDP
	pICMP
	pICMP6
	pSCTP
	pIGMP
	pIGRP
	pPIM
	pVRRP
	pCARP
	pAH
	pESP
)

var protoKeys = map[string]proto{
	"ip": pIP, "ip6": pIP6, "tcp": pTCP, "udp": pUDP, "icmp": pICMP, "icmp6": pICMP6,
	"sctp": pSCTP, "igmp": pIGMP, "igrp": pIGRP, "pim": pPIM, "vrrp": pVRRP, "carp": pCARP,
	"ah": pAH, "esp": pESP,
}

func (p proto) String() string {
	for k, v := range protoKeys {
		if v == p {
			return k
		}
	}
	return "default"
}

type dir int

const (
	dDefault dir = iota
	dSrc
	dDst
	dOr
	dAnd
)

type addrq int

const (
	aUndef addrq = iota // no qualifier applies (after "tcp", a relation, ...)
	aDefault
	aHost
	aNet
	aPort
	aPortrange
	aGateway
	aProto
	aProtochain
)

// qual is the qualifiers of a primitive, which carry over to bare
// operands after "and" and "or": "host a or b" is "host a or host b".
type qual struct {
	p proto
	d dir
	a addrq
}

var qerr = qual{a: aUndef}

// ipProtos are the protocol names (Debian's /etc/protocols) for "proto"
// and "protochain".
var ipProtos = map[string]uint32{
	"ip": 0, "hopopt": 0, "icmp": 1, "igmp": 2, "ggp": 3, "ipencap": 4, "st": 5, "tcp": 6,
	"egp": 8, "igp": 9, "pup": 12, "udp": 17, "hmp": 20, "xns-idp": 22, "rdp": 27, "iso-tp4": 29,
	"dccp": 33, "xtp": 36, "ddp": 37, "idpr-cmtp": 38, "ipv6": 41, "ipv6-route": 43, "ipv6-frag": 44,
	"idrp": 45, "rsvp": 46, "gre": 47, "esp": 50, "ah": 51, "skip": 57, "ipv6-icmp": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "rspf": 73, "vmtp": 81, "eigrp": 88, "ospf": 89, "ax.25": 93,
	"ipip": 94, "etherip": 97, "encap": 98, "pim": 103, "ipcomp": 108, "vrrp": 112, "l2tp": 115,
	"isis": 124, "sctp": 132, "fc": 133, "mobility-header": 135, "udplite": 136, "mpls-in-ip": 137,
	"manet": 138, "hip": 139, "shim6": 140, "wesp": 141, "rohc": 142, "ethernet": 143,
	"IP": 0, "HOPOPT": 0, "ICMP": 1, "IGMP": 2, "TCP": 6, "UDP": 17, "IPv6": 41, "GRE": 47,
	"IPSEC-ESP": 50, "IPSEC-AH": 51, "IPv6-ICMP": 58, "OSPFIGP": 89, "PIM": 103, "VRRP": 112, "SCTP": 132,
}

// service is a port name's number and the protocols it is registered for.
type service struct {
	port     uint32
	tcp, udp bool
}

// portNames are the service names "port" and "portrange" know, as
// Debian's /etc/services registers them (libpcap looks them up there): a
// name registered for TCP only does not go with "udp port".
var portNames = map[string]service{
	"ftp-data": {20, true, false}, "ftp": {21, true, false}, "ssh": {22, true, false},
	"telnet": {23, true, false}, "smtp": {25, true, false}, "domain": {53, true, true},
	"bootps": {67, false, true}, "bootpc": {68, false, true}, "tftp": {69, false, true},
	"http": {80, true, false}, "www": {80, true, false}, "kerberos": {88, true, true},
	"pop3": {110, true, false}, "sunrpc": {111, true, true}, "ntp": {123, false, true},
	"imap2": {143, true, false}, "imap": {143, true, false}, "snmp": {161, true, true},
	"snmp-trap": {162, true, true}, "bgp": {179, true, false}, "ldap": {389, true, true},
	"https": {443, true, true}, "syslog": {514, false, true}, "submission": {587, true, false},
	"ldaps": {636, true, true}, "imaps": {993, true, false}, "pop3s": {995, true, false},
	"openvpn": {1194, true, true}, "radius": {1812, true, true}, "nfs": {2049, true, true},
	"mysql": {3306, true, false}, "postgresql": {5432, true, false},
}

// nameToPort is a port name's (or number's) port and protocol (6, 17, or
// 0 for both).
func nameToPort(s string) (uint32, uint32, bool) {
	if sv, ok := portNames[s]; ok {
		switch {
		case sv.tcp && sv.udp:
			return sv.port, 0, true
		case sv.tcp:
			return sv.port, 6, true
		}
		return sv.port, 17, true
	}
	if isDigits(s) {
		n, err := strconv.ParseUint(s, 10, 32)
		return uint32(n), 0, err == nil
	}
	return 0, 0, false
}

// portOf narrows a named port's protocol by the qualifier, as libpcap does.
func portOf(pr proto, real uint32, what, name string) uint32 {
	names := map[uint32]string{6: "tcp", 17: "udp"}
	switch pr {
	case pUDP:
		if real == 6 {
			semf("%s '%s' is tcp", what, name)
		}
		return 17
	case pTCP:
		if real == 17 {
			semf("%s '%s' is udp", what, name)
		}
		return 6
	case pSCTP:
		if real != 0 {
			semf("%s '%s' is %s", what, name, names[real])
		}
		return 132
	}
	return real
}

// parser is a recursive-descent parser for pcap-filter(7) with the
// semantic actions of libpcap's grammar: and/or have the same precedence
// and group to the left, not binds tighter, and a bare operand after
// and/or takes the qualifiers of the primitive before it.
type parser struct {
	toks []token
	i    int
}

// parseError is a syntax error; backtracking may try another reading.
type parseError struct{ msg string }

// semError is an error in an expression that parsed: it stops the parse.
type semError struct{ msg string }

func syntaxError(int) error { return parseError{"syntax error"} }

func (e parseError) Error() string { return e.msg }
func (e semError) Error() string   { return e.msg }

// notIP is the hint for a keyword of another protocol than IP.
const notIP = "skbtrail traces IP packets only"

func linkError(word, hint string) error {
	if hint == notIP {
		return semError{fmt.Sprintf("%q is not IP, and skbtrail's probes see IP packets only (from the IP header on)", word)}
	}
	return semError{fmt.Sprintf("%q needs the link layer, which skbtrail's probes do not see (they start at the IP header): %s", word, hint)}
}

func fail()                      { panic(parseError{"syntax error"}) }
func semf(f string, args ...any) { panic(semError{fmt.Sprintf(f, args...)}) }
func (p *parser) peek() token    { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return p.toks[len(p.toks)-1]
}
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}
func (t token) is(kind tokKind, text string) bool { return t.kind == kind && t.text == text }
func (t token) key(s string) bool                 { return t.is(tKey, s) }
func (t token) op(s string) bool                  { return t.is(tOp, s) }

func (p *parser) expect(op string) {
	if !p.next().op(op) {
		fail()
	}
}

// try runs f; on a syntax error it rewinds and reports false.
func (p *parser) try(f func()) (ok bool) {
	save := p.i
	defer func() {
		if r := recover(); r != nil {
			if _, isParse := r.(parseError); !isParse {
				panic(r)
			}
			p.i = save
			ok = false
		}
	}()
	f()
	return true
}

// parse parses a whole expression; the empty expression accepts all.
func parse(expr string) (b *bnode, err error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	defer func() {
		if r := recover(); r != nil {
			switch e := r.(type) {
			case parseError:
				err = e
			case semError:
				err = e
			default:
				panic(r)
			}
		}
	}()
	if p.peek().kind == tEOF {
		return &bnode{kind: bConst, val: true}, nil
	}
	b, _ = p.expr(qerr)
	if p.peek().kind != tEOF {
		fail()
	}
	return b, nil
}

func (p *parser) isAnd() bool { t := p.peek(); return t.key("and") || t.op("&&") }
func (p *parser) isOr() bool  { t := p.peek(); return t.key("or") || t.op("||") }
func (p *parser) isNot() bool { t := p.peek(); return t.key("not") || t.op("!") }

// expr: term { (and|or) (term|id) }, left to right.
func (p *parser) expr(inh qual) (*bnode, qual) {
	b, q := p.term(inh)
	for p.isAnd() || p.isOr() {
		isAnd := p.isAnd()
		p.next()
		var r *bnode
		rq := q
		if !p.try(func() { r, rq = p.term(q) }) {
			r = p.id(q)
			rq = q
		}
		if isAnd {
			b = and(b, r)
		} else {
			b = or(b, r)
		}
		q = rq
	}
	return b, q
}

func (p *parser) term(inh qual) (*bnode, qual) {
	if p.isNot() {
		p.next()
		b, q := p.term(inh)
		return not(b), q
	}
	return p.rterm(inh)
}

func isDirKey(t token) bool { return t.key("src") || t.key("dst") }
func isAddrKey(t token) bool {
	return t.key("host") || t.key("net") || t.key("port") || t.key("portrange") || t.key("gateway")
}

func (p *parser) rterm(inh qual) (*bnode, qual) {
	t := p.peek()
	switch {
	case t.op("("):
		var b *bnode
		if p.try(func() { b = p.relation() }) {
			return b, qerr
		}
		p.next()
		b, _ = p.expr(inh)
		p.expect(")")
		return b, inh
	case t.kind == tKey && protoKeys[t.text] != 0:
		n := p.peekAt(1)
		switch {
		case isDirKey(n) || isAddrKey(n) || n.key("proto") || n.key("protochain"):
			q := p.head()
			return p.id(q), q
		case n.op("["):
			return p.relation(), qerr
		case n.key("broadcast") || n.key("multicast"):
			p.next()
			p.next()
			return castTest(protoKeys[t.text], n.text), qerr
		}
		p.next()
		return abbrev(protoKeys[t.text]), qerr
	case isDirKey(t) || isAddrKey(t) || t.key("proto") || t.key("protochain"):
		q := p.head()
		return p.id(q), q
	case t.key("less") || t.key("greater"):
		p.next()
		n := p.next()
		if n.kind != tNum {
			fail()
		}
		l := &relation{a0: &arith{kind: aLen}, a1: &arith{kind: aNum, k: n.num}, op: opJGE}
		if t.key("less") {
			l.op, l.neg = opJGT, true
		}
		return &bnode{kind: bRel, rel: l}, qerr
	case t.key("broadcast") || t.key("multicast"):
		p.next()
		return castTest(pDefault, t.text), qerr
	case t.kind == tNum || t.key("len") || t.op("-"):
		return p.relation(), qerr
	}
	fail()
	return nil, qerr
}

// head: [proto] [dir] [addr | proto | protochain], at least one.
func (p *parser) head() qual {
	q := qual{a: aDefault}
	if t := p.peek(); t.kind == tKey && protoKeys[t.text] != 0 {
		q.p = protoKeys[t.text]
		p.next()
	}
	if t := p.peek(); t.key("proto") || t.key("protochain") {
		p.next()
		q.a = aProto
		if t.key("protochain") {
			q.a = aProtochain
		}
		return q
	}
	if t := p.peek(); isDirKey(t) {
		p.next()
		q.d = dSrc
		if t.key("dst") {
			q.d = dDst
		}
		if c, o := p.peek(), p.peekAt(1); (c.key("or") || c.key("and")) && isDirKey(o) && !o.is(t.kind, t.text) {
			p.next()
			p.next()
			q.d = dOr
			if c.key("and") {
				q.d = dAnd
			}
		}
	}
	if t := p.peek(); isAddrKey(t) {
		p.next()
		q.a = map[string]addrq{"host": aHost, "net": aNet, "port": aPort, "portrange": aPortrange, "gateway": aGateway}[t.text]
	}
	return q
}

// id is an operand under qualifiers q.
func (p *parser) id(q qual) *bnode {
	if p.peek().op("(") {
		p.next()
		b := p.pid(q)
		p.expect(")")
		return b
	}
	return p.nid(q)
}

// pid: operands joined by and/or inside parentheses, all under q.
func (p *parser) pid(q qual) *bnode {
	b := p.nid(q)
	for p.isAnd() || p.isOr() {
		isAnd := p.isAnd()
		p.next()
		r := p.id(q)
		if isAnd {
			b = and(b, r)
		} else {
			b = or(b, r)
		}
	}
	return b
}

func (p *parser) nid(q qual) *bnode {
	t := p.next()
	switch {
	case p.isNotTok(t):
		return not(p.id(q))
	case t.op("("): // a parenthesized number
		p.i--
		n := p.pnum()
		return genNum(n, q)
	case t.kind == tNum:
		return genNum(t.num, q)
	case t.kind == tID:
		return genName(t.text, q)
	case t.kind == tEID:
		semf("%s", linkError(t.text, "filter by device with --dev").Error())
	case t.kind == tHID:
		if q.a == aUndef {
			fail()
		}
		if n := p.peek(); n.op("/") {
			p.next()
			m := p.next()
			if m.kind != tNum {
				fail()
			}
			return genMask4(t.text, "", m.num, true, q)
		} else if n.key("mask") {
			p.next()
			m := p.next()
			if m.kind != tHID {
				fail()
			}
			return genMask4(t.text, m.text, 0, false, q)
		}
		switch q.a {
		case aPort:
			semf("'port' modifier applied to ip host")
		case aPortrange:
			semf("'portrange' modifier applied to ip host")
		case aProto:
			semf("'proto' modifier applied to ip host")
		case aProtochain:
			semf("'protochain' modifier applied to ip host")
		case aGateway:
			semf("%s", linkError("gateway", "filter by host and device").Error())
		}
		v, bits, err := atoin(t.text)
		if err != nil {
			semf("%v", err)
		}
		return genAddr4(v<<(32-bits), 0xffffffff<<(32-bits), q)
	case t.kind == tHID6:
		bits := uint32(128)
		if p.peek().op("/") {
			p.next()
			m := p.next()
			if m.kind != tNum {
				fail()
			}
			bits = m.num
		}
		return genAddr6(t.text, bits, q)
	}
	fail()
	return nil
}

func (p *parser) isNotTok(t token) bool { return t.key("not") || t.op("!") }

func (p *parser) pnum() uint32 {
	if p.peek().op("(") {
		p.next()
		n := p.pnum()
		p.expect(")")
		return n
	}
	t := p.next()
	if t.kind != tNum {
		fail()
	}
	return t.num
}

// relation: arith relop arith.
func (p *parser) relation() *bnode {
	a0, c0 := p.arith(0)
	t := p.next()
	r := &relation{}
	switch {
	case t.op("="), t.op("=="):
		r.op = opJEQ
	case t.op("!="):
		r.op, r.neg = opJEQ, true
	case t.op(">"):
		r.op = opJGT
	case t.op(">="):
		r.op = opJGE
	case t.op("<"):
		r.op, r.neg = opJGE, true
	case t.op("<="):
		r.op, r.neg = opJGT, true
	default:
		fail()
	}
	a1, c1 := p.arith(0)
	r.a0, r.a1 = a0, a1
	if need(a0) > 16 || 1+need(a1) > 16 {
		semf("too many registers needed to evaluate expression")
	}
	return and(and(c0, c1), &bnode{kind: bRel, rel: r})
}

// need is how many of libpcap's 16 scratch registers evaluating a takes;
// libpcap refuses an expression that needs more.
func need(a *arith) int {
	switch a.kind {
	case aLoad:
		return max(need(a.a), 2)
	case aBin:
		return max(need(a.a), 1+need(a.b))
	case aNeg:
		return need(a.a)
	}
	return 1
}

// binary operators by precedence, lowest first. "%" and "^" are not among
// them: libpcap's grammar gives them no precedence, so yacc always shifts
// them: the left operand is the operand just before, the right one all
// that follows ("a + b % c + d" is a + (b % (c + d)), "-a % b" is
// -(a % b)). Unary minus binds tighter than the others ("-a / b" is
// (-a) / b).
var precedence = [][]string{{"|"}, {"&"}, {"<<", ">>"}, {"+", "-"}, {"*", "/"}}

var aluOps = map[string]uint16{"|": aluOR, "^": aluXOR, "&": aluAND, "<<": aluLSH, ">>": aluRSH,
	"+": aluADD, "-": aluSUB, "*": aluMUL, "/": aluDIV, "%": aluMOD}

// arith parses an arithmetic expression at precedence level lvl and
// returns it with the protocol checks its loads need.
func (p *parser) arith(lvl int) (*arith, *bnode) {
	if lvl == len(precedence) {
		return p.unary()
	}
	a, c := p.arith(lvl + 1)
	for {
		t := p.peek()
		found := ""
		for _, o := range precedence[lvl] {
			if t.op(o) {
				found = o
			}
		}
		if found == "" {
			return a, c
		}
		p.next()
		b, cb := p.arith(lvl + 1)
		a, c = p.binary(aluOps[found], a, c, b, cb)
	}
}

// binary makes a op b, refusing what libpcap refuses.
func (p *parser) binary(op uint16, a *arith, c *bnode, b *arith, cb *bnode) (*arith, *bnode) {
	{
		if k, ok := firstImm(b); ok {
			switch {
			case op == aluDIV && k == 0:
				semf("division by zero")
			case op == aluMOD && k == 0:
				semf("modulus by zero")
			case (op == aluLSH || op == aluRSH) && k > 31:
				semf("shift by more than 31 bits")
			}
		}
		// What libpcap's optimizer finds when it folds constants.
		if k, ok := constValue(b); ok {
			switch {
			case op == aluDIV && k == 0:
				semf("division by zero")
			case op == aluMOD && k == 0:
				semf("modulus by zero")
			case (op == aluLSH || op == aluRSH) && k > 31 && simplify(a).kind != aNum:
				// (a constant shifted by more is folded to 0)
				semf("shift by more than 31 bits")
			}
		}
		// libpcap keeps the protocol checks of the left operand only
		// (gen_arth returns a0 with its checks): "32 << ip[20] = 0"
		// does not require IPv4.
		_ = cb
		return &arith{kind: aBin, alu: op, a: a, b: b}, c
	}
}

// firstImm: libpcap checks a divisor or shift count that is a literal by
// looking at the first instruction of its code, which is the first number
// written in it ("ip[0] / ip[0]" divides by the index 0).
func firstImm(a *arith) (uint32, bool) {
	switch a.kind {
	case aNum:
		return a.k, true
	case aLoad, aBin, aNeg:
		return firstImm(a.a)
	}
	return 0, false
}

// constValue evaluates an expression made of numbers only.
func constValue(a *arith) (uint32, bool) {
	switch a.kind {
	case aNum:
		return a.k, true
	case aNeg:
		v, ok := constValue(a.a)
		return -v, ok
	case aBin:
		x, ok1 := constValue(a.a)
		y, ok2 := constValue(a.b)
		if !ok1 || !ok2 {
			return 0, false
		}
		v, ok := alu(a.alu, x, y)
		return v, ok
	}
	return 0, false
}

func (p *parser) unary() (*arith, *bnode) {
	if p.peek().op("-") {
		p.next()
		a, c := p.unary()
		return &arith{kind: aNeg, a: a}, c
	}
	a, c := p.primary()
	if t := p.peek(); t.op("^") || t.op("%") {
		p.next()
		b, cb := p.arith(0)
		return p.binary(aluOps[t.text], a, c, b, cb)
	}
	return a, c
}

func (p *parser) primary() (*arith, *bnode) {
	t := p.peek()
	switch {
	case t.op("("):
		p.next()
		a, c := p.arith(0)
		p.expect(")")
		return a, c
	case t.kind == tNum:
		p.next()
		return &arith{kind: aNum, k: t.num}, nil
	case t.key("len"):
		p.next()
		return &arith{kind: aLen}, nil
	case t.kind == tKey && protoKeys[t.text] != 0 && p.peekAt(1).op("["):
		p.next()
		p.next()
		idx, c := p.arith(0)
		size := uint32(1)
		if p.peek().op(":") {
			p.next()
			n := p.next()
			if n.kind != tNum {
				fail()
			}
			size = n.num
		}
		p.expect("]")
		if size != 1 && size != 2 && size != 4 {
			semf("data size must be 1, 2, or 4")
		}
		return indexLoad(protoKeys[t.text], idx, int(size), c)
	}
	fail()
	return nil, nil
}

// indexLoad is proto[idx:size] with its checks, in libpcap's order.
func indexLoad(pr proto, idx *arith, size int, c *bnode) (*arith, *bnode) {
	a := &arith{kind: aLoad, a: idx, size: size}
	switch pr {
	case pIP, pIP6:
		a.base = baseNet
		return a, and(c, abbrev(pr))
	case pTCP, pUDP, pICMP, pIGMP, pSCTP, pIGRP, pPIM, pVRRP, pCARP:
		a.base = baseTransport
		return a, ands(isIP4(), c, abbrev(pr), notLaterFragment())
	case pICMP6:
		a.base = baseICMP6
		return a, ands(c, isIP6(), cmp(1, 6, 58))
	}
	semf("unsupported index operation")
	return nil, nil
}

// abbrev is a protocol name used alone: "tcp", "ip6".
func abbrev(pr proto) *bnode {
	switch pr {
	case pIP:
		return isIP4()
	case pIP6:
		return isIP6()
	case pTCP:
		return genProto(6, pDefault)
	case pUDP:
		return genProto(17, pDefault)
	case pSCTP:
		return genProto(132, pDefault)
	case pICMP:
		return genProto(1, pIP)
	case pIGMP:
		return genProto(2, pIP)
	case pIGRP:
		return genProto(9, pIP)
	case pPIM:
		return genProto(103, pDefault)
	case pVRRP, pCARP:
		return genProto(112, pIP)
	case pAH:
		return genProto(51, pDefault)
	case pESP:
		return genProto(50, pDefault)
	case pICMP6:
		return genProto(58, pIP6)
	}
	fail()
	return nil
}

// genProto: the IPv4 protocol field, or the IPv6 next header (directly
// after the fixed header, or after a fragment header).
func genProto(v uint32, pr proto) *bnode {
	switch pr {
	case pDefault:
		return or(genProto(v, pIP), genProto(v, pIP6))
	case pIP:
		return and(isIP4(), cmp(1, 9, v))
	case pIP6:
		return and(isIP6(), or(cmp(1, 6, v), and(cmp(1, 6, 44), cmp(1, 40, v))))
	}
	semf("'%s proto' is bogus", pr)
	return nil
}

func castTest(pr proto, what string) *bnode {
	switch {
	case pr == pIP && what == "broadcast":
		// skbtrail knows no netmask: like tcpdump reading a file, the
		// limited broadcast address and 0.0.0.0.
		return and(isIP4(), or(cmp(4, 16, 0), cmp(4, 16, 0xffffffff)))
	case pr == pIP && what == "multicast":
		return and(isIP4(), ltest(load{size: 1, off: 16}, opJGE, 224))
	case pr == pIP6 && what == "multicast":
		return and(isIP6(), cmp(1, 24, 255))
	case pr == pDefault:
		semf("%s", linkError(what, "write \"ip "+what+"\""+map[bool]string{true: " or \"ip6 multicast\"", false: ""}[what == "multicast"]).Error())
	}
	semf("only IP %s filters are supported (\"ip %s\"%s)", what, what, map[bool]string{true: ", \"ip6 multicast\"", false: ""}[what == "multicast"])
	return nil
}

// genNum is a number under qualifiers q.
func genNum(v uint32, q qual) *bnode {
	switch q.a {
	case aDefault, aHost, aNet:
		mask := uint32(0xffffffff)
		if q.a == aNet { // a short net number: "net 10" is 10.0.0.0/8
			for v != 0 && v&0xff000000 == 0 {
				v <<= 8
				mask <<= 8
			}
		}
		return genAddr4(v, mask, q)
	case aPort:
		pr := portProto(q.p, "port")
		if v > 65535 {
			semf("illegal port number %d > 65535", v)
		}
		return or(port6(v, v, pr, q.d, false), port4(v, v, pr, q.d, false))
	case aPortrange:
		pr := portProto(q.p, "portrange")
		if v > 65535 {
			semf("illegal port number %d > 65535", v)
		}
		return or(port6(v, v, pr, q.d, true), port4(v, v, pr, q.d, true))
	case aGateway:
		semf("%s", linkError("gateway", "filter by host and device").Error())
	case aProto:
		if q.d != dDefault {
			semf("direction applied to 'proto'")
		}
		return genProto(v, q.p)
	case aProtochain:
		return genChain(v, q.p)
	}
	fail()
	return nil
}

// genName is a name under qualifiers q: a port, a port range or a protocol.
func genName(name string, q qual) *bnode {
	switch q.a {
	case aDefault, aHost, aNet:
		if q.p != pDefault && q.p != pIP && q.p != pIP6 {
			semf("'%s' modifier applied to host", q.p)
		}
		semf("host and network names are not looked up: write the address instead of %q", name)
	case aPort:
		portProto(q.p, "port")
		v, real, ok := nameToPort(name)
		if !ok {
			semf("unknown port '%s'", name)
		}
		pr := portOf(q.p, real, "port", name)
		return or(port6(v, v, pr, q.d, false), port4(v, v, pr, q.d, false))
	case aPortrange:
		portProto(q.p, "portrange")
		lo, hi, real := portRange(name)
		if lo > hi {
			lo, hi = hi, lo
		}
		pr := portOf(q.p, real, "port in range", name)
		return or(port6(lo, hi, pr, q.d, true), port4(lo, hi, pr, q.d, true))
	case aGateway:
		semf("%s", linkError("gateway", "filter by host and device").Error())
	case aProto, aProtochain:
		if q.p != pDefault && q.p != pIP && q.p != pIP6 {
			if q.a == aProto {
				semf("'%s proto' is bogus", q.p)
			}
			semf("bad protocol applied for 'protochain'")
		}
		v, ok := ipProtos[name]
		if !ok {
			semf("unknown ip proto '%s'", name)
		}
		if q.a == aProto {
			return genProto(v, q.p)
		}
		return genChain(v, q.p)
	}
	fail()
	return nil
}

// portRange parses "a-b" (numbers or names, split at the first dash).
func portRange(name string) (uint32, uint32, uint32) {
	i := strings.IndexByte(name, '-')
	if i < 0 {
		semf("unknown port in range '%s'", name)
	}
	a, b := name[:i], name[i+1:]
	if isDigits(a) && isDigits(b) {
		lo, err1 := strconv.ParseUint(a, 10, 32)
		hi, err2 := strconv.ParseUint(b, 10, 32)
		if err1 != nil || err2 != nil {
			semf("unknown port in range '%s'", name)
		}
		for _, v := range []uint64{lo, hi} {
			if v > 65535 {
				semf("illegal port number %d > 65535", v)
			}
		}
		return uint32(lo), uint32(hi), 0
	}
	lo, p1, ok1 := nameToPort(a)
	hi, p2, ok2 := nameToPort(b)
	if !ok1 || !ok2 {
		semf("unknown port in range '%s'", name)
	}
	for _, v := range []uint32{lo, hi} {
		if v > 65535 {
			semf("illegal port number %d > 65535", v)
		}
	}
	if p1 != p2 {
		p1 = 0
	}
	return lo, hi, p1
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// portProto is the transport protocol a port qualifier allows (0: TCP,
// UDP and SCTP).
func portProto(pr proto, what string) uint32 {
	switch pr {
	case pTCP:
		return 6
	case pUDP:
		return 17
	case pSCTP:
		return 132
	case pDefault:
		return 0
	}
	semf("illegal qualifier of '%s'", what)
	return 0
}

// portTest: the port at off (abs, or after the IPv4 header) in lo..hi.
func portTest(ind bool, off uint32, lo, hi uint32, rng bool) *bnode {
	ld := load{size: 2, off: off, ind: ind}
	if !rng { // libpcap tests "portrange 53" as a range too
		return ltest(ld, opJEQ, lo)
	}
	return and(ltest(ld, opJGE, lo), not(ltest(ld, opJGT, hi)))
}

func portDir(ind bool, base uint32, lo, hi uint32, d dir, rng bool) *bnode {
	src, dst := func() *bnode { return portTest(ind, base, lo, hi, rng) }, func() *bnode { return portTest(ind, base+2, lo, hi, rng) }
	switch d {
	case dSrc:
		return src()
	case dDst:
		return dst()
	case dAnd:
		return and(src(), dst())
	}
	return or(src(), dst())
}

// port4: an IPv4 packet of protocol pr (0: TCP, UDP or SCTP), not a
// later fragment, with the ports.
func port4(lo, hi, pr uint32, d dir, rng bool) *bnode {
	one := func(pr uint32) *bnode {
		return ands(cmp(1, 9, pr), notLaterFragment(), portDir(true, 0, lo, hi, d, rng))
	}
	if pr == 0 {
		return and(isIP4(), ors(one(132), one(6), one(17)))
	}
	return and(isIP4(), one(pr))
}

// port6: an IPv6 packet whose next header is pr, with the ports.
func port6(lo, hi, pr uint32, d dir, rng bool) *bnode {
	one := func(pr uint32) *bnode { return and(cmp(1, 6, pr), portDir(false, 40, lo, hi, d, rng)) }
	if pr == 0 {
		return and(isIP6(), ors(one(132), one(6), one(17)))
	}
	return and(isIP6(), one(pr))
}

func hostDir(d dir, f func(off uint32) *bnode, src, dst uint32) *bnode {
	switch d {
	case dSrc:
		return f(src)
	case dDst:
		return f(dst)
	case dAnd:
		return and(f(src), f(dst))
	}
	return or(f(src), f(dst))
}

func addrWhat(q qual) string {
	if q.a == aNet {
		return "net"
	}
	return "host"
}

// genAddr4: IPv4 source and/or destination & mask == v.
func genAddr4(v, mask uint32, q qual) *bnode {
	switch q.p {
	case pDefault, pIP:
	case pIP6:
		semf("'ip6' modifier applied to ip host")
	default:
		semf("'%s' modifier applied to %s", q.p, addrWhat(q))
	}
	return hostDir(q.d, func(off uint32) *bnode { return and(isIP4(), mcmp(4, off, mask, v)) }, 12, 16)
}

func genMask4(addr, maskAddr string, bits uint32, isLen bool, q qual) *bnode {
	n, nbits, err := atoin(addr)
	if err != nil {
		semf("%v", err)
	}
	n <<= 32 - nbits
	var m uint32
	if isLen {
		if bits > 32 {
			semf("mask length must be <= 32")
		}
		if bits != 0 {
			m = 0xffffffff << (32 - bits)
		}
		if n&^m != 0 {
			semf("non-network bits set in \"%s/%d\"", addr, bits)
		}
	} else {
		mv, mbits, err := atoin(maskAddr)
		if err != nil {
			semf("%v", err)
		}
		m = mv << (32 - mbits)
		if n&^m != 0 {
			semf("non-network bits set in \"%s mask %s\"", addr, maskAddr)
		}
	}
	if q.a != aNet {
		semf("Mask syntax for networks only")
	}
	return genAddr4(n, m, q)
}

// genAddr6: IPv6 source and/or destination, bits long prefix.
func genAddr6(text string, bits uint32, q qual) *bnode {
	a, err := netip.ParseAddr(text)
	if err != nil || !a.Is6() {
		semf("invalid IPv6 address %q", text)
	}
	if bits > 128 {
		semf("mask length must be <= 128")
	}
	pfx := netip.PrefixFrom(a, int(bits))
	if pfx.Masked().Addr() != a {
		semf("non-network bits set in \"%s/%d\"", text, bits)
	}
	switch q.a {
	case aDefault, aHost:
		if bits != 128 {
			semf("Mask syntax for networks only")
		}
	case aNet:
	case aPort:
		semf("'port' modifier applied to ip6 host")
	case aPortrange:
		semf("'portrange' modifier applied to ip6 host")
	case aProto:
		semf("'proto' modifier applied to ip6 host")
	case aProtochain:
		semf("'protochain' modifier applied to ip6 host")
	case aGateway:
		semf("%s", linkError("gateway", "filter by host and device").Error())
	default:
		fail()
	}
	switch q.p {
	case pDefault, pIP6:
	case pIP:
		semf("'ip' modifier applied to ip6 %s", addrWhat(q))
	default:
		semf("'%s' modifier applied to ip6 %s", q.p, addrWhat(q))
	}
	b := a.As16()
	var words, masks [4]uint32
	for i := range 4 {
		words[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		switch lo := uint32(32 * i); {
		case bits >= lo+32:
			masks[i] = 0xffffffff
		case bits > lo:
			masks[i] = 0xffffffff << (32 - (bits - lo))
		}
	}
	return hostDir(q.d, func(off uint32) *bnode {
		return ands(isIP6(), mcmp(4, off, masks[0], words[0]), mcmp(4, off+4, masks[1], words[1]),
			mcmp(4, off+8, masks[2], words[2]), mcmp(4, off+12, masks[3], words[3]))
	}, 8, 24)
}

func genChain(v uint32, pr proto) *bnode {
	switch pr {
	case pDefault:
		return or(and(isIP4(), &bnode{kind: bChain, chain: &chain{v: v}}), and(isIP6(), &bnode{kind: bChain, chain: &chain{v: v, v6: true}}))
	case pIP:
		return and(isIP4(), &bnode{kind: bChain, chain: &chain{v: v}})
	case pIP6:
		return and(isIP6(), &bnode{kind: bChain, chain: &chain{v: v, v6: true}})
	}
	semf("bad protocol applied for 'protochain'")
	return nil
}
