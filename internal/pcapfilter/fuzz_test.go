package pcapfilter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// exprGen writes a random expression of pcap-filter(7)'s grammar, its
// choices read from b (0 once b runs out, so every input ends).
type exprGen struct {
	b     []byte
	i     int
	depth int
}

func (g *exprGen) n(k int) int {
	if g.i >= len(g.b) || k <= 1 {
		return 0
	}
	v := int(g.b[g.i])
	g.i++
	return v % k
}

func (g *exprGen) pick(xs ...string) string { return xs[g.n(len(xs))] }

var (
	fzAddr4 = []string{"198.18.0.1", "198.18.0.2", "10.0.0.1", "255.255.255.255", "0.0.0.0", "224.0.0.1", "198.18", "10", "198.19.255.255"}
	fzAddr6 = []string{"fd00:1::1", "fd00:1::2", "::1", "::", "fe80::1", "ff02::16", "::ffff:198.18.0.1", "fd00:1:0:0:0:0:0:2", "2001:db8::80"}
	fzNet   = []string{"198.18.0.0/15", "10.0.0.0/8", "0.0.0.0/0", "224.0.0.0/4", "198.18.0.0 mask 255.254.0.0", "fd00::/8", "fd00:1::/64", "::/0", "ff00::/8", "198.18", "10", "128.3", "198.18.0.1/32", "fe80::/10"}
	fzPorts = []string{"80", "22", "53", "443", "5353", "0", "65535", "3868", "http", "domain", "ssh", "ftp-data", "0x50", "7005", "99999"}
	fzRange = []string{"1000-2000", "20-30", "7000-7009", "0-65535", "5002-5004", "30-20", "53", "ftp-data-ssh", "1-70000"}
	fzProto = []string{"6", "17", "1", "58", "132", "2", "51", "50", "44", "0", "59", "60", "300", "\\tcp", "\\udp", "\\icmp", "gre", "ipv6-icmp", "tcp"}
	fzNamed = []string{"tcpflags", "tcp-syn", "tcp-ack", "tcp-fin", "tcp-rst", "tcp-push", "tcp-urg", "tcp-ece", "tcp-cwr", "icmptype", "icmpcode", "icmp-echo", "icmp-echoreply", "icmp-unreach", "icmp-timxceed", "icmp6type", "icmp6code", "icmp6-echo", "icmp6-echoreply", "icmp6-neighborsolicit"}
	fzPname = []string{"ip", "ip6", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp", "pim", "vrrp", "ah", "esp", "igrp", "carp"}
)

func (g *exprGen) expr() string {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > 5 || g.n(3) != 0 {
		return g.term()
	}
	op := g.pick("and", "or", "&&", "||")
	if g.n(3) == 0 {
		return g.expr() + " " + op + " " + g.operand()
	}
	return g.expr() + " " + op + " " + g.term()
}

func (g *exprGen) term() string {
	if g.n(5) == 1 && g.depth < 8 {
		g.depth++
		defer func() { g.depth-- }()
		return g.pick("not ", "!") + g.term()
	}
	return g.rterm()
}

func (g *exprGen) operand() string {
	switch g.n(7) {
	case 0:
		return g.pick(fzAddr4...)
	case 1:
		return g.pick(fzAddr6...)
	case 2:
		return g.pick(fzPorts...)
	case 3:
		return g.pick(fzNet...)
	case 4, 5:
		if g.depth++; g.depth > 8 {
			g.depth--
			return "80"
		}
		defer func() { g.depth-- }()
		if g.n(2) == 0 {
			return "not " + g.operand()
		}
		return "(" + g.operand() + " " + g.pick("and", "or") + " " + g.operand() + ")"
	}
	return g.pick(fzProto...)
}

func (g *exprGen) rterm() string {
	switch g.n(12) {
	case 0, 1:
		return g.pick(fzPname...)
	case 2, 3:
		return g.head()
	case 4:
		if g.depth < 5 {
			return "(" + g.expr() + ")"
		}
		return g.pick(fzPname...)
	case 5, 6, 7:
		return g.arith(0) + " " + g.pick("=", "==", "!=", "<", "<=", ">", ">=") + " " + g.arith(0)
	case 8:
		return g.pick("less ", "greater ") + fmt.Sprint(g.n(256))
	case 9:
		return g.pick("ip broadcast", "ip multicast", "ip6 multicast", "broadcast", "multicast", "tcp multicast")
	case 10:
		return g.pick("ether host 1:2:3:4:5:6", "vlan", "mpls", "arp", "ether[0] = 1", "gateway 198.18.0.1", "link[0] = 0x45", "inbound")
	}
	return g.pick(fzPname...) + " " + g.pick("proto", "protochain") + " " + g.pick(fzProto...)
}

func (g *exprGen) head() string {
	s := ""
	if g.n(2) == 0 {
		s += g.pick(fzPname...) + " "
	}
	if g.n(2) == 0 {
		s += g.pick("src ", "dst ", "src or dst ", "src and dst ", "dst or src ")
	}
	switch g.n(6) {
	case 0:
		return s + "host " + g.pick(append(fzAddr4, fzAddr6...)...)
	case 1:
		return s + "net " + g.pick(fzNet...)
	case 2:
		return s + "port " + g.pick(fzPorts...)
	case 3:
		return s + "portrange " + g.pick(fzRange...)
	case 4:
		return s + g.pick("proto ", "protochain ") + g.pick(fzProto...)
	}
	return s + g.pick(append(fzAddr4, fzAddr6...)...)
}

func (g *exprGen) arith(d int) string {
	if d > 3 {
		return fmt.Sprint(g.n(256))
	}
	switch g.n(9) {
	case 0:
		return fmt.Sprint(g.n(256))
	case 1:
		return g.pick("0", "1", "0x40", "0xf", "0x1fff", "64", "255", "0xffffffff", "32", "2")
	case 2:
		return g.pick(fzNamed...)
	case 3:
		return "len"
	case 4, 5:
		idx := g.pick("0", "1", "2", "6", "8", "9", "12", "13", "16", "20", "24", "40", "100")
		if g.n(4) == 0 {
			idx = g.arith(d + 1)
		}
		size := g.pick("", "", ":1", ":2", ":4", ":3")
		return g.pick(fzPname...) + "[" + idx + size + "]"
	case 6:
		return g.arith(d+1) + " " + g.pick("+", "-", "*", "/", "%", "&", "|", "^", "<<", ">>") + " " + g.arith(d+1)
	case 7:
		return "(" + g.arith(d+1) + ")"
	}
	return "-" + g.arith(d+1)
}

// FuzzAgainstLibpcap generates expressions from the grammar (from seed)
// and wants our verdicts equal libpcap's on the fuzzed packet, on a
// mutated corpus packet, and on their truncations.
func FuzzAgainstLibpcap(f *testing.F) {
	needTcpdump(f)
	pkts := corpus()
	for i, p := range pkts {
		f.Add([]byte{byte(i), byte(i * 7), byte(i * 13), 3, 5, 7, 11}, p.data)
	}
	f.Fuzz(func(t *testing.T, seed []byte, pkt []byte) {
		g := &exprGen{b: seed}
		expr := g.expr()
		base := pkts[g.n(len(pkts))].data
		mut := append([]byte(nil), base...)
		for k := g.n(4); k > 0 && len(mut) > 0; k-- {
			mut[g.n(len(mut))] = byte(g.n(256))
		}
		if len(pkt) > 0 && g.n(2) == 0 {
			pkt[0] = byte(0x40 + g.n(2)*0x20 + g.n(16))
		}
		compareWithLibpcap(t, expr, []namedPacket{{"fuzzed", pkt}, {"mutated", mut}}, true)
	})
}

// FuzzParse: no input makes Compile panic; what it accepts translates and
// runs; what it refuses gives one line wrapping ErrInvalid.
func FuzzParse(f *testing.F) {
	for _, e := range exprs {
		f.Add(e)
	}
	for _, e := range badExprs {
		f.Add(e)
	}
	pkts := corpus()
	f.Fuzz(func(t *testing.T, expr string) {
		prog, err := Compile(expr)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("%q: %v: want one line wrapping ErrInvalid", expr, err)
			}
			return
		}
		if _, err := Translate(prog); err != nil {
			t.Fatalf("%q: translate: %v", expr, err)
		}
		for _, p := range pkts[:10] {
			Run(prog, p.data, uint32(len(p.data)))
		}
	})
}
