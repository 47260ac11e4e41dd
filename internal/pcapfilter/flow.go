package pcapfilter

import (
	"net/netip"

	"golang.org/x/net/bpf"
)

// Flow is what a route lookup (fib_table_lookup) knows of a packet: no
// packet, only the key it looks up.
type Flow struct {
	Family       uint8 // 4 or 6
	Proto        uint8 // IPPROTO_*
	Src, Dst     netip.Addr
	Sport, Dport uint16
}

// MatchFlow decides whether a route lookup's flow matches a program from
// Compile, by running it on the IPv4 or IPv6 header (and the ports) the
// flow describes:
//
//   - IPv4: version 4 with a 20-byte header (byte 0 is 0x45), not a
//     fragment (flags and fragment offset 0), protocol, source and
//     destination; IPv6: version 6 (byte 0 is 0x60), next header (the
//     protocol, no extension headers), source and destination;
//   - for TCP, UDP and SCTP, the source and destination ports right after;
//   - an address, a port or the protocol the flow leaves at zero is taken
//     as zero (the lookup's key has it so).
//
// Everything else (TTL, lengths, ICMP type, payload, "len") the flow does
// not have: an expression that reads it rejects the flow, the way libpcap
// rejects a packet too short for a load. So "udp and dst portrange
// 5002-5004" decides a flow by its ports, "icmp and ip[8] < 10" rejects a
// UDP flow (not ICMP), and "ip[8] < 10" rejects every flow.
func MatchFlow(prog []bpf.RawInstruction, f Flow) bool {
	pkt, known := flowHeader(f)
	return run(prog, pkt, known, 0, false) != 0
}

func flowHeader(f Flow) ([]byte, []bool) {
	var pkt []byte
	var known []bool
	mark := func(from, to int) {
		for i := from; i < to; i++ {
			known[i] = true
		}
	}
	addr := func(a netip.Addr, n int) []byte {
		if !a.IsValid() {
			return make([]byte, n)
		}
		if n == 4 {
			if !a.Is4() && !a.Is4In6() {
				return make([]byte, n)
			}
			b := a.Unmap().As4()
			return b[:]
		}
		b := a.As16()
		return b[:]
	}
	var l4 int
	switch f.Family {
	case 4:
		pkt, known = make([]byte, 24), make([]bool, 24)
		pkt[0], pkt[9] = 0x45, f.Proto
		copy(pkt[12:], addr(f.Src, 4))
		copy(pkt[16:], addr(f.Dst, 4))
		mark(0, 1)
		mark(6, 8)
		mark(9, 10)
		mark(12, 20)
		l4 = 20
	case 6:
		pkt, known = make([]byte, 44), make([]bool, 44)
		pkt[0], pkt[6] = 0x60, f.Proto
		copy(pkt[8:], addr(f.Src, 16))
		copy(pkt[24:], addr(f.Dst, 16))
		mark(0, 1)
		mark(6, 7)
		mark(8, 40)
		l4 = 40
	default:
		return nil, nil
	}
	switch f.Proto {
	case 6, 17, 132:
		pkt[l4], pkt[l4+1] = byte(f.Sport>>8), byte(f.Sport)
		pkt[l4+2], pkt[l4+3] = byte(f.Dport>>8), byte(f.Dport)
		mark(l4, l4+4)
	}
	return pkt, known
}
