package pcapfilter

import "golang.org/x/net/bpf"

// maxSteps bounds how many instructions Run executes: libpcap's
// protochain programs jump backwards and, on some packets, loop.
const maxSteps = 1 << 20

// alu applies a classic BPF ALU operation the way libpcap's bpf_filter
// does; division (or modulus) by zero fails.
func alu(op uint16, a, x uint32) (uint32, bool) {
	switch op {
	case aluADD:
		return a + x, true
	case aluSUB:
		return a - x, true
	case aluMUL:
		return a * x, true
	case aluDIV:
		if x == 0 {
			return 0, false
		}
		return a / x, true
	case aluMOD:
		if x == 0 {
			return 0, false
		}
		return a % x, true
	case aluOR:
		return a | x, true
	case aluAND:
		return a & x, true
	case aluXOR:
		return a ^ x, true
	case aluLSH:
		if x >= 32 {
			return 0, true
		}
		return a << x, true
	case aluRSH:
		if x >= 32 {
			return 0, true
		}
		return a >> x, true
	case aluNEG:
		return -a, true
	}
	return 0, false
}

// Run runs a classic BPF program on pkt, which starts at the IP header, and
// returns its result: 0 for no match, otherwise the number of bytes to
// capture. wirelen is the packet's length on the wire ("len"), pkt the
// bytes captured. It has the semantics of libpcap's bpf_filter: a load
// beyond pkt, a division by zero or an unknown instruction reject the
// packet; an unconditional jump's offset is signed (libpcap's protochain
// jumps back).
//
// golang.org/x/net/bpf's VM is not used: its "len" is the bytes captured,
// not the wire length, and it refuses backward jumps.
func Run(prog []bpf.RawInstruction, pkt []byte, wirelen uint32) uint32 {
	return run(prog, pkt, nil, wirelen, true)
}

// run is Run where known, when set, says which bytes of pkt may be read
// (reading another rejects), and lenKnown whether "len" may be.
func run(prog []bpf.RawInstruction, pkt []byte, known []bool, wirelen uint32, lenKnown bool) uint32 {
	var a, x uint32
	var mem [16]uint32
	readable := func(off uint64, n uint64) bool {
		if off+n > uint64(len(pkt)) {
			return false
		}
		for i := off; known != nil && i < off+n; i++ {
			if !known[i] {
				return false
			}
		}
		return true
	}
	ld := func(off uint64, size uint16) (uint32, bool) {
		switch size {
		case 0x00:
			if !readable(off, 4) {
				return 0, false
			}
			return uint32(pkt[off])<<24 | uint32(pkt[off+1])<<16 | uint32(pkt[off+2])<<8 | uint32(pkt[off+3]), true
		case 0x08:
			if !readable(off, 2) {
				return 0, false
			}
			return uint32(pkt[off])<<8 | uint32(pkt[off+1]), true
		case 0x10:
			if !readable(off, 1) {
				return 0, false
			}
			return uint32(pkt[off]), true
		}
		return 0, false
	}
	pc := 0
	for steps := 0; steps < maxSteps; steps++ {
		if pc < 0 || pc >= len(prog) {
			return 0
		}
		in := prog[pc]
		pc++
		var ok bool
		switch cls := in.Op & 0x07; cls {
		case 0x00, 0x01: // LD, LDX
			var v uint32
			switch mode := in.Op & 0xe0; {
			case mode == 0x00: // IMM
				v = in.K
			case mode == 0x20 && cls == 0x00: // ABS
				if v, ok = ld(uint64(in.K), in.Op&0x18); !ok {
					return 0
				}
			case mode == 0x40 && cls == 0x00: // IND
				if v, ok = ld(uint64(x)+uint64(in.K), in.Op&0x18); !ok {
					return 0
				}
			case mode == 0x60: // MEM
				if in.K >= 16 {
					return 0
				}
				v = mem[in.K]
			case mode == 0x80: // LEN
				if !lenKnown {
					return 0
				}
				v = wirelen
			case mode == 0xa0 && cls == 0x01 && in.Op&0x18 == 0x10: // MSH
				b, ok := ld(uint64(in.K), 0x10)
				if !ok {
					return 0
				}
				v = 4 * (b & 0xf)
			default:
				return 0
			}
			if in.Op&0x18 != 0 && (in.Op&0xe0 == 0x00 || in.Op&0xe0 == 0x60 || in.Op&0xe0 == 0x80) {
				return 0 // sizes belong to packet loads
			}
			if cls == 0x00 {
				a = v
			} else {
				x = v
			}
		case 0x02, 0x03: // ST, STX
			if in.K >= 16 {
				return 0
			}
			if cls == 0x02 {
				mem[in.K] = a
			} else {
				mem[in.K] = x
			}
		case 0x04: // ALU
			v := in.K
			if in.Op&0x08 != 0 {
				v = x
			}
			if a, ok = alu(in.Op&0xf0, a, v); !ok {
				return 0
			}
		case 0x05: // JMP
			v := in.K
			if in.Op&0x08 != 0 {
				v = x
			}
			var c bool
			switch in.Op & 0xf0 {
			case 0x00: // JA
				pc += int(int32(in.K))
				continue
			case opJEQ:
				c = a == v
			case opJGT:
				c = a > v
			case opJGE:
				c = a >= v
			case opJSET:
				c = a&v != 0
			default:
				return 0
			}
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case 0x06: // RET
			switch in.Op & 0x18 {
			case 0x00:
				return in.K
			case 0x10:
				return a
			}
			return 0
		case 0x07: // MISC
			switch in.Op & 0xf8 {
			case 0x00:
				x = a
			case 0x80:
				a = x
			default:
				return 0
			}
		}
	}
	return 0
}
