package pcapfilter

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// expressions the corpus runs through libpcap and the translation.
var expressions = []string{
	"",
	"ip", "ip6", "tcp", "udp", "icmp", "icmp6", "not tcp",
	"host 198.18.0.1", "src host 198.18.0.1", "dst host 198.18.0.2",
	"net 198.18.0.0/15", "dst net 198.19.0.0/16", "src net fd00::/8", "host fd00:1::2",
	"tcp and dst port 80", "port 53", "udp src port 5353", "portrange 1000-2000",
	"tcp and dst port 80 and net 198.18.0.0/15",
	"tcp[tcpflags] & tcp-syn != 0", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
	"icmp[icmptype] == icmp-echo", "icmp6 and ip6[40] == 128",
	"ip[8] < 64", "ip[2:2] > 100", "greater 100", "less 60", "len >= 41 and len <= 60",
	"ip proto 17 or ip6 proto 17", "ip[6:2] & 0x1fff != 0", "ip[0] & 0xf > 5",
	"tcp port 443 or (udp and not port 53)", "ip and (tcp[13] = 2)",
	"ip6 and tcp and dst port 22", "ip[2:2] / 4 == 15", "ip[2:2] % 7 == 3",
	"ip[1] * 3 - 1 == 2", "ip[12:4] ^ 0xc6120001 == 0", "ip[2:2] >> 2 == 15", "ip[3] << 9 == 0x7800",
	"tcp[20:4] = 0x47455420", // "GET " at the start of an option-less TCP payload
	"udp[8:2] = 0x1234",
}

// packets is the corpus: IPv4 and IPv6 packets of several protocols, with
// options, fragments and payloads, as raw IP (no link header).
func packets(t *testing.T) map[string][]byte {
	t.Helper()
	a4, b4, c4 := net.ParseIP("198.18.0.1"), net.ParseIP("198.18.0.2"), net.ParseIP("10.0.0.1")
	a6, b6 := net.ParseIP("fd00:1::1"), net.ParseIP("fd00:1::2")
	ip4 := func(src, dst net.IP, proto layers.IPProtocol, ttl uint8) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, SrcIP: src, DstIP: dst, Id: 7}
	}
	ip6 := func(src, dst net.IP, next layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: src, DstIP: dst}
	}
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		for _, l := range ls {
			if n, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				for _, m := range ls {
					if nl, ok := m.(gopacket.NetworkLayer); ok {
						n.SetNetworkLayerForChecksum(nl)
					}
				}
			}
		}
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	get := gopacket.Payload("GET / HTTP/1.1\r\n\r\n")
	out := map[string][]byte{
		"tcp4 syn :80": ser(ip4(a4, b4, layers.IPProtocolTCP, 64), &layers.TCP{SrcPort: 40000, DstPort: 80, SYN: true, Seq: 1, Window: 512}),
		"tcp4 ack get": ser(ip4(a4, b4, layers.IPProtocolTCP, 64), &layers.TCP{SrcPort: 40000, DstPort: 80, ACK: true, PSH: true, Seq: 2, Ack: 9, Window: 512}, get),
		"tcp4 synack":  ser(ip4(b4, a4, layers.IPProtocolTCP, 63), &layers.TCP{SrcPort: 80, DstPort: 40000, SYN: true, ACK: true, Window: 512}),
		"tcp4 :443 other net": ser(ip4(c4, a4, layers.IPProtocolTCP, 30), &layers.TCP{SrcPort: 443, DstPort: 1500, ACK: true, Window: 1},
			gopacket.Payload(make([]byte, 100))),
		"udp4 :53":     ser(ip4(a4, b4, layers.IPProtocolUDP, 64), &layers.UDP{SrcPort: 5353, DstPort: 53}, gopacket.Payload{0x12, 0x34, 0, 0}),
		"udp4 :1234":   ser(ip4(a4, c4, layers.IPProtocolUDP, 1), &layers.UDP{SrcPort: 1234, DstPort: 1999}, gopacket.Payload{0x12, 0x34}),
		"icmp4 echo":   ser(ip4(a4, b4, layers.IPProtocolICMPv4, 64), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 7, Seq: 1}, gopacket.Payload(make([]byte, 56))),
		"icmp4 reply":  ser(ip4(b4, a4, layers.IPProtocolICMPv4, 64), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(0, 0), Id: 7, Seq: 1}),
		"tcp6 syn :22": ser(ip6(a6, b6, layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 22, SYN: true, Window: 512}),
		"udp6 :53":     ser(ip6(b6, a6, layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 5353}, gopacket.Payload{1, 2, 3}),
		"icmp6 echo":   ser(ip6(a6, b6, layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload{0, 7, 0, 1}),
		"ip4 options": ser(&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: a4, DstIP: b4,
			Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}},
			&layers.TCP{SrcPort: 1, DstPort: 80, SYN: true}),
	}
	// A later fragment: offset 1480 bytes, UDP ports unreadable.
	frag := ser(ip4(a4, b4, layers.IPProtocolUDP, 64), &layers.UDP{SrcPort: 5353, DstPort: 53}, gopacket.Payload(make([]byte, 20)))
	frag[6], frag[7] = 0x00, 185
	out["udp4 later fragment"] = frag
	out["not ip"] = []byte{0x00, 1, 2, 3, 4, 5, 6, 7}
	out["empty"] = nil
	return out
}

// TestTranslateMatchesLibpcap runs every expression's program, libpcap's
// (the oracle, from tcpdump) and ours, on every packet of the corpus (and
// on every truncation of it) with Run and with the translated eBPF in the
// kernel, and wants the same verdict.
func TestTranslateMatchesLibpcap(t *testing.T) {
	run := kernelRunner(t)
	pkts := map[string][]byte{}
	for name, p := range packets(t) {
		pkts[name] = p
	}
	for _, p := range corpus() {
		pkts["corpus "+p.name] = p.data
	}
	checked := 0
	for _, expr := range append(expressions, "protochain 6", "ip6 protochain 17", "tcp port 80 or 443", "net fd00::/8 and udp") {
		ours, err := Compile(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		theirs, err := libpcap(t, expr)
		if err != nil {
			t.Fatalf("%q: libpcap: %v", expr, err)
		}
		for _, prog := range []struct {
			who  string
			prog []bpf.RawInstruction
		}{{"ours", ours}, {"libpcap's", theirs}} {
			body, err := Translate(prog.prog)
			if err != nil {
				if prog.who == "libpcap's" && strings.Contains(expr, "protochain") {
					continue // libpcap's protochain jumps back
				}
				t.Fatalf("%q: translate %s: %v", expr, prog.who, err)
			}
			if run == nil {
				continue
			}
			p, err := run.load(body)
			if err != nil {
				t.Fatalf("%q: load %s: %v", expr, prog.who, err)
			}
			matched := 0
			for name, pkt := range pkts {
				for n := len(pkt); n >= 0; n-- {
					cut := pkt[:n]
					want := Run(prog.prog, cut, uint32(n)) != 0
					got, err := run.run(p, cut)
					if err != nil {
						t.Fatalf("%q on %s[:%d]: %v", expr, name, n, err)
					}
					if got != want {
						t.Errorf("%q (%s) on %s[:%d] (% x): eBPF %v, Run %v", expr, prog.who, name, n, cut, got, want)
					}
					if n == len(pkt) && want {
						matched++
					}
					checked++
					if n < len(pkt)-80 { // long payloads: the headers are what counts
						n = 0
					}
				}
			}
			p.Close()
			t.Logf("%-45q %-9s matches %d of %d packets", expr, prog.who, matched, len(pkts))
		}
	}
	t.Logf("%d verdicts compared", checked)
}

func TestCompileError(t *testing.T) {
	_, err := Compile("tcp and and port 80")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "syntax error") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want a syntax error on one line", err)
	}
	_, err = Compile("ether host 1:2:3:4:5:6 and tcp")
	if !isLinkError(err) || !strings.Contains(err.Error(), "--dev") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want the link-layer error naming --dev", err)
	}
}

type runner struct{}

// kernelRunner returns nil (and the test only translates) unless the test
// runs as root, which loading programs needs.
func kernelRunner(t *testing.T) *runner {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test loads BPF programs and must run as root in CI")
		}
		t.Log("not root: translating only, not running in the kernel")
		return nil
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	return &runner{}
}

const fakeEth = 14 // XDP test runs want an Ethernet header

// load wraps the translated function in an XDP program that calls it with
// the test packet (after a fake Ethernet header) the way the probes do:
// with a copy of its first bytes in a map value and the packet as a plain
// kernel address, not a packet pointer.
func (*runner) load(body asm.Instructions) (*ebpf.Program, error) {
	buf, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: CopySize, MaxEntries: 1})
	if err != nil {
		return nil, err
	}
	defer buf.Close() // the program holds it
	lookup := asm.LoadMapPtr(asm.R1, 0)
	if err := lookup.AssociateMap(buf); err != nil {
		return nil, err
	}
	main := asm.Instructions{
		asm.LoadMem(asm.R6, asm.R1, 0, asm.Word), // xdp_md.data
		asm.LoadMem(asm.R7, asm.R1, 4, asm.Word), // xdp_md.data_end
		asm.Sub.Reg(asm.R7, asm.R6),
		asm.Sub.Imm(asm.R7, fakeEth),
		asm.Add.Imm(asm.R6, fakeEth),
		// Launder the packet pointer into a scalar, as the probes'
		// pointers are: copy it through bpf_probe_read_kernel.
		asm.StoreMem(asm.RFP, -8, asm.R6, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -16),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.FnProbeReadKernel.Call(),
		// The copy: min(len, CopySize) bytes into the map value.
		asm.StoreImm(asm.RFP, -24, 0, asm.Word),
		lookup,
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -24),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "found"),
		asm.Return(),
		asm.Mov.Reg(asm.R8, asm.R0).WithSymbol("found"),
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.JLE.Imm(asm.R9, CopySize, "clamped"),
		asm.Mov.Imm(asm.R9, CopySize),
		asm.Mov.Reg(asm.R1, asm.R8).WithSymbol("clamped"),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Mov.Reg(asm.R3, asm.R6),
		asm.FnProbeReadKernel.Call(),
		asm.JEq.Imm(asm.R0, 0, "copied"),
		asm.Mov.Imm(asm.R9, 0),
		asm.Mov.Reg(asm.R1, asm.R8).WithSymbol("copied"),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.LoadMem(asm.R3, asm.RFP, -16, asm.DWord),
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.Call.Label(StubName),
		asm.Return(),
	}
	b := append(asm.Instructions(nil), body...)
	b[0] = b[0].WithSymbol(StubName)
	spec := &ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: append(main, b...)}
	p, err := ebpf.NewProgram(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%+v", ve)
		}
	}
	return p, err
}

func (*runner) run(p *ebpf.Program, pkt []byte) (bool, error) {
	data := append(make([]byte, fakeEth), pkt...)
	ret, err := p.Run(&ebpf.RunOptions{Data: data})
	if err != nil {
		return false, err
	}
	if ret > 1 {
		return false, fmt.Errorf("returned %d, want 0 or 1", ret)
	}
	return ret == 1, nil
}
