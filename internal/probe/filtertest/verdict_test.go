package filtertest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/testenv"
)

// TestFilterAgrees: the Go model of the packet filter (filter.Filter.Match)
// and the probes' BPF filter (bpf/packet.h, run in the kernel with
// BPF_PROG_TEST_RUN) give the same verdict on every case: IPv4 and IPv6,
// prefixes, ports, protocols, real headers (parsed as the probes parse
// them), socket summaries and route lookup flows (loose matching).
func TestFilterAgrees(t *testing.T) {
	testenv.NeedRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	filters := testFilters(t)
	packets := testPackets()
	rng := rand.New(rand.NewPCG(1, 2))
	// Under emulation (the kernel matrix sets SKBTRAIL_E2E_TIMESCALE) each
	// load takes most of a second: the fixed filters only. The filter is
	// the same BPF code on every kernel; the host runs all of them.
	random := 120
	if os.Getenv("SKBTRAIL_E2E_TIMESCALE") != "" {
		random = 0
	}
	for i := 0; i < random; i++ {
		filters = append(filters, randomFilter(rng))
	}
	for i := 0; i < 300; i++ {
		packets = append(packets, randomPacket(rng))
	}
	var n, matched int
	for _, f := range filters {
		k := newKernel(t, f)
		for _, tp := range packets {
			want := f.Match(tp.pkt)
			got := k.verdict(t, tp)
			n++
			if want {
				matched++
			}
			if got != want {
				t.Errorf("filter %q, %s: kernel says %v, Match says %v", f, tp.name, got, want)
			}
		}
		k.close()
		if t.Failed() {
			break
		}
	}
	t.Logf("%d verdicts (%d filters x %d packets), %d matches", n, len(filters), len(packets), matched)
	if matched == 0 || matched == n {
		t.Errorf("the cases are degenerate: %d of %d match", matched, n)
	}
}

// testFilters are filters as the flags give them.
func testFilters(t *testing.T) []filter.Filter {
	opts := []filter.Options{
		{},
		{Proto: "icmp"}, {Proto: "tcp"}, {Proto: "udp"}, {Proto: "icmp6"}, {Proto: "132"},
		{Saddr: "198.18.0.1"}, {Daddr: "198.18.0.2"}, {Addr: "198.18.0.1"},
		{Saddr: "198.18.0.0/15"}, {Daddr: "198.19.0.0/16"}, {Addr: "198.18.128.0/17"},
		{Saddr: "0.0.0.0/0"}, {Daddr: "::/0"},
		{Saddr: "fd00::1"}, {Daddr: "fd00:1::/32"}, {Addr: "fd00::/8"},
		{Sport: "5000"}, {Dport: "80"}, {Port: "53"},
		{Proto: "tcp", Dport: "80"}, {Proto: "udp", Port: "5000", Addr: "198.18.0.2"},
		{Saddr: "198.18.0.1", Dport: "81", Proto: "tcp"},
		{Addr: "fd00::2", Proto: "icmp6"},
	}
	var out []filter.Filter
	for _, o := range opts {
		f, err := filter.Parse(o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		out = append(out, f)
	}
	return out
}

type testPacket struct {
	name  string
	pkt   event.Packet // what the probes read
	bytes []byte       // the IP packet, when the case is real headers
}

var addrs = []netip.Addr{
	netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.19.7.7"),
	netip.MustParseAddr("198.18.200.1"), netip.MustParseAddr("0.0.0.0"),
	netip.MustParseAddr("fd00::1"), netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd00:1::9"),
	netip.MustParseAddr("::"), netip.MustParseAddr("::ffff:198.18.0.1"),
}

// testPackets: real IPv4 and IPv6 headers with TCP, UDP, ICMP, ICMPv6,
// SCTP and a later fragment; and the same flows as socket summaries and
// route lookup flows, some with unknown (zero) fields.
func testPackets() []testPacket {
	var out []testPacket
	v4 := func(i, j int) (netip.Addr, netip.Addr) { return addrs[i], addrs[j] }
	for _, c := range []struct {
		proto        uint8
		sport, dport uint16
	}{{6, 40000, 80}, {6, 5000, 81}, {17, 5000, 53}, {17, 53, 5000}, {1, 0, 0}, {132, 0, 0}} {
		for _, ij := range [][2]int{{0, 1}, {1, 0}, {2, 3}, {0, 2}} {
			src, dst := v4(ij[0], ij[1])
			out = append(out, header(src, dst, c.proto, c.sport, c.dport, false))
		}
	}
	for _, c := range []struct {
		proto        uint8
		sport, dport uint16
	}{{6, 40000, 80}, {17, 5000, 53}, {58, 0, 0}} {
		for _, ij := range [][2]int{{5, 6}, {6, 5}, {7, 5}, {9, 6}} {
			out = append(out, header(addrs[ij[0]], addrs[ij[1]], c.proto, c.sport, c.dport, false))
		}
	}
	out = append(out, header(addrs[0], addrs[1], 17, 5000, 53, true)) // a later fragment: no ports
	for _, src := range []netip.Addr{addrs[0], addrs[4], addrs[5], addrs[8]} {
		for _, c := range []struct {
			proto        uint8
			sport, dport uint16
		}{{17, 5000, 53}, {17, 0, 53}, {0, 0, 0}, {6, 0, 0}, {1, 0, 0}} {
			dst := addrs[1]
			if src.Is6() {
				dst = addrs[6]
			}
			for _, source := range []string{event.FromFlow, event.FromSock} {
				p := event.Packet{Source: source, Family: family(src), Proto: c.proto, Src: src, Dst: dst, Sport: c.sport, Dport: c.dport}
				out = append(out, testPacket{name: fmt.Sprintf("%s %s", source, describe(p)), pkt: p})
			}
		}
	}
	return out
}

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return 4
	}
	return 6
}

func describe(p event.Packet) string {
	return fmt.Sprintf("proto %d %s:%d > %s:%d", p.Proto, p.Src, p.Sport, p.Dst, p.Dport)
}

// header builds an IP packet and what the probes read from it.
func header(src, dst netip.Addr, proto uint8, sport, dport uint16, laterFragment bool) testPacket {
	var l4 []byte
	switch proto {
	case 6:
		l4 = make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		l4[12], l4[13] = 5<<4, 0x02
	case 17:
		l4 = make([]byte, 8)
		binary.BigEndian.PutUint16(l4[0:], sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		binary.BigEndian.PutUint16(l4[4:], 8)
	default:
		l4 = make([]byte, 8)
		l4[0] = 8
	}
	p := event.Packet{Source: event.FromHeaders, Family: family(src), Proto: proto, Src: src, Dst: dst}
	if proto == 6 || proto == 17 {
		p.Sport, p.Dport = sport, dport
	}
	var b bytes.Buffer
	if src.Is4() {
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		if laterFragment {
			h[7] = 8 // offset 64 bytes
			p.Sport, p.Dport = 0, 0
		}
		s, d := src.As4(), dst.As4()
		copy(h[12:], s[:])
		copy(h[16:], d[:])
		b.Write(h)
	} else {
		h := make([]byte, 40)
		h[0], h[6], h[7] = 0x60, proto, 64
		binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
		s, d := src.As16(), dst.As16()
		copy(h[8:], s[:])
		copy(h[24:], d[:])
		b.Write(h)
	}
	b.Write(l4)
	name := "header " + describe(p)
	if laterFragment {
		name += " (later fragment)"
	}
	return testPacket{name: name, pkt: p, bytes: b.Bytes()}
}

func randomFilter(r *rand.Rand) filter.Filter {
	var f filter.Filter
	pick := func() netip.Prefix {
		a := addrs[r.IntN(len(addrs))]
		if a.Is4In6() && r.IntN(2) == 0 {
			a = a.Unmap()
		}
		bits := r.IntN(a.BitLen() + 1)
		p, _ := a.Prefix(bits)
		return p
	}
	if r.IntN(3) == 0 {
		f.Saddr = pick()
	}
	if r.IntN(3) == 0 {
		f.Daddr = pick()
	}
	if r.IntN(4) == 0 {
		f.Addr = pick()
	}
	ports := []uint16{53, 80, 5000}
	if r.IntN(4) == 0 {
		f.Sport = ports[r.IntN(3)]
	}
	if r.IntN(4) == 0 {
		f.Dport = ports[r.IntN(3)]
	}
	if r.IntN(4) == 0 {
		f.Port = ports[r.IntN(3)]
	}
	if r.IntN(3) == 0 {
		f.Proto = []uint8{1, 6, 17, 58}[r.IntN(4)]
	}
	return f
}

func randomPacket(r *rand.Rand) testPacket {
	src, dst := addrs[r.IntN(5)], addrs[r.IntN(5)]
	if r.IntN(2) == 0 {
		src, dst = addrs[5+r.IntN(5)], addrs[5+r.IntN(5)]
	}
	proto := []uint8{0, 1, 6, 17, 58}[r.IntN(5)]
	ports := []uint16{0, 53, 80, 5000}
	sport, dport := ports[r.IntN(4)], ports[r.IntN(4)]
	if r.IntN(2) == 0 && proto != 0 && !(src.Is4() && proto == 58) {
		return header(src, dst, proto, max(sport, 1), max(dport, 1), false)
	}
	source := []string{event.FromFlow, event.FromSock}[r.IntN(2)]
	p := event.Packet{Source: source, Family: family(src), Proto: proto, Src: src, Dst: dst, Sport: sport, Dport: dport}
	if r.IntN(8) == 0 {
		p.Src = netip.Addr{} // unknown: zero bytes
	}
	return testPacket{name: fmt.Sprintf("random %s %s", source, describe(p)), pkt: p}
}

// kernel is the filter loaded into the verdict programs.
type kernel struct {
	coll *ebpf.Collection
}

func newKernel(t *testing.T, f filter.Filter) *kernel {
	spec, err := loadVerdict()
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["cfg"].Set(probe.KernelFilter(f)); err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("%+v", ve)
		}
		t.Fatal(err)
	}
	return &kernel{coll: coll}
}

func (k *kernel) close() { k.coll.Close() }

const (
	xdpDrop = 1
	xdpPass = 2
)

func (k *kernel) verdict(t *testing.T, tp testPacket) bool {
	in := make([]byte, 14) // the Ethernet header XDP test runs want
	prog := k.coll.Programs["verdict_headers"]
	if tp.bytes != nil {
		in = append(in, tp.bytes...)
	} else {
		prog = k.coll.Programs["verdict_pkt"]
		var v verdictVerdictInput
		if tp.pkt.Source == event.FromFlow {
			v.Loose = 1
		}
		p := tp.pkt
		v.P.Family, v.P.L4, v.P.Sport, v.P.Dport = p.Family, p.Proto, p.Sport, p.Dport
		if p.Src.IsValid() {
			if p.Family == 4 {
				a := p.Src.As4()
				copy(v.P.Saddr[:], a[:])
			} else {
				v.P.Saddr = p.Src.As16()
			}
		}
		if p.Dst.IsValid() {
			if p.Family == 4 {
				a := p.Dst.As4()
				copy(v.P.Daddr[:], a[:])
			} else {
				v.P.Daddr = p.Dst.As16()
			}
		}
		var b bytes.Buffer
		binary.Write(&b, binary.NativeEndian, &v)
		in = append(in, b.Bytes()...)
	}
	ret, err := prog.Run(&ebpf.RunOptions{Data: in})
	if err != nil {
		t.Fatalf("%s: run: %v", tp.name, err)
	}
	switch ret {
	case xdpPass:
		return true
	case xdpDrop:
		return false
	}
	t.Fatalf("%s: the program returned %d (could not read the input)", tp.name, ret)
	return false
}
