package pcapfilter

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// StubName is the BPF function (bpf/skbtrail.h) whose body Inject replaces.
const StubName = "filter_pcap_l3"

// Registers of the translated program. R1..R5 are clobbered by the helper
// calls that read the packet; R6..R9 survive them. A BPF-to-BPF callee has
// its own R6..R9 (the caller's are restored on return).
const (
	regBuf    = asm.R6 // the copy of the packet from its IP header on (a map value)
	regCopied = asm.R7 // bytes in the copy (at most CopySize)
	regA      = asm.R8 // cBPF accumulator A
	regX      = asm.R9 // cBPF index register X
)

// CopySize is the most bytes of the packet the probes copy for the
// expression (HDR_COPY_MAX in bpf/packet.h): loads within the copy are
// plain loads, loads past it read the packet with bpf_probe_read_kernel.
const CopySize = 128

// Stack of the translated program: the 16 cBPF scratch words M[0..15], an
// 8-byte slot bpf_probe_read_kernel reads packet bytes into, and the
// packet's address and length (for loads past the copy).
const (
	memOff  = -64 // M[k] at fp-64+4k
	loadOff = -72
	l3Off   = -80
	lenOff  = -88
)

// classic BPF opcode fields (linux/filter.h).
const (
	clsLD, clsLDX, clsST, clsSTX, clsALU, clsJMP, clsRET, clsMISC = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07

	szW, szH, szB = 0x00, 0x08, 0x10

	modeIMM, modeABS, modeIND, modeMEM, modeLEN, modeMSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xa0

	srcK, srcX = 0x00, 0x08

	retK, retX, retA = 0x00, 0x08, 0x10

	miscTAX, miscTXA = 0x00, 0x80
)

// maxLoadOffset bounds the constant offset of a packet load; libpcap makes
// none this far (IPv6 extension headers are at most a few hundred bytes in),
// and a larger one would not fit a 32-bit signed compare.
const maxLoadOffset = 1 << 20

// jump is a branch of the output to fix up once every block's place is
// known: to cBPF instruction target, or to the reject block (target -1).
type jump struct {
	at     int // index in the output
	target int
}

// Translate translates a classic BPF program (as Compile returns it) into
// the body of the eBPF function
//
//	int filter_pcap_l3(const __u8 *copy, __u32 copied, const void *l3, __u32 len)
//
// that returns 1 when the program accepts the packet starting at l3 (of
// which len bytes can be read), 0 otherwise, with the semantics of
// libpcap's bpf_filter: a load beyond len rejects, and so does a division
// by zero. copy holds the packet's first copied bytes (copied <= len, at
// most CopySize; a map value, so that loads may be indexed): a load within
// them is a plain load, one past them reads the packet with
// bpf_probe_read_kernel (l3 may be any kernel address); a failed read
// rejects. Every jump goes forward, so the verifier sees a bounded program.
func Translate(prog []bpf.RawInstruction) (asm.Instructions, error) {
	if len(prog) == 0 {
		return nil, fmt.Errorf("empty classic BPF program")
	}
	if _, ok := bpf.Disassemble(prog); !ok {
		// Not fatal by itself (Disassemble knows no extensions), but
		// libpcap makes none for DLT_RAW; refuse to guess.
		return nil, fmt.Errorf("classic BPF program has instructions this translator does not know")
	}
	var (
		out    asm.Instructions
		jumps  []jump
		starts = make([]int, len(prog))
	)
	emit := func(ins ...asm.Instruction) { out = append(out, ins...) }
	branch := func(ins asm.Instruction, target int) {
		jumps = append(jumps, jump{at: len(out), target: target})
		out = append(out, ins)
	}
	ja := func(target int) { branch(asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Ja)}, target) }
	const reject = -1

	usesMem := false
	for _, in := range prog {
		switch c := in.Op & 0x07; {
		case c == clsST || c == clsSTX,
			(c == clsLD || c == clsLDX) && in.Op&0xe0 == modeMEM:
			usesMem = true
		}
	}

	// Prologue: keep the arguments, A = X = 0, M[] = 0.
	emit(
		asm.Mov.Reg(regBuf, asm.R1),
		asm.Mov.Reg32(regCopied, asm.R2),
		asm.StoreMem(asm.RFP, l3Off, asm.R3, asm.DWord),
		asm.Mov.Reg32(asm.R4, asm.R4),
		asm.StoreMem(asm.RFP, lenOff, asm.R4, asm.DWord),
		asm.Mov.Imm32(regA, 0),
		asm.Mov.Imm32(regX, 0),
	)
	// copied <= CopySize, for the verifier: if copied <= CopySize goto +1.
	emit(asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.JLE).SetSource(asm.ImmSource),
		Dst: regCopied, Constant: CopySize, Offset: 1}, asm.Mov.Imm32(regCopied, CopySize))
	if usesMem {
		// Through a register: cilium/ebpf's StoreImm makes an invalid
		// opcode.
		emit(asm.Mov.Imm(asm.R0, 0))
		for off := int16(memOff); off < 0; off += 8 {
			emit(asm.StoreMem(asm.RFP, off, asm.R0, asm.DWord))
		}
	}

	// local is a jump within one load's code: its offset is set with
	// land once its target is emitted.
	local := func(ins asm.Instruction) int {
		out = append(out, ins)
		return len(out) - 1
	}
	land := func(at int) {
		ins := out[at]
		ins.Offset = int16(len(out) - at - 1)
		out[at] = ins.WithReference("")
	}
	swap := func(dst asm.Register, size int) {
		switch size {
		case 2:
			emit(asm.HostTo(asm.BE, dst, asm.Half))
		case 4:
			emit(asm.HostTo(asm.BE, dst, asm.Word))
		}
	}
	width := map[int]asm.Size{1: asm.Byte, 2: asm.Half, 4: asm.Word}

	// load reads size bytes of the packet at X+k (ind) or k into dst, in
	// host byte order: from the copy when they are in it, else from the
	// packet.
	load := func(dst asm.Register, size int, k uint32, ind bool) {
		var slow, done int
		if !ind {
			if uint64(k)+uint64(size) > maxLoadOffset {
				ja(reject)
				return
			}
			fast := uint64(k)+uint64(size) <= CopySize
			if fast {
				// if copied < k+size: the packet
				slow = local(asm.JLT.Imm(regCopied, int32(k)+int32(size), ""))
				emit(asm.LoadMem(dst, regBuf, int16(k), width[size]))
				swap(dst, size)
				done = local(asm.Ja.Label(""))
				land(slow)
			}
			// if len < k+size: reject
			emit(asm.LoadMem(asm.R4, asm.RFP, lenOff, asm.DWord))
			branch(asm.JLT.Imm(asm.R4, int32(k)+int32(size), ""), reject)
			emit(asm.LoadMem(asm.R3, asm.RFP, l3Off, asm.DWord), asm.Add.Imm(asm.R3, int32(k)))
			readPacket(dst, size, emit, branch)
			if fast {
				land(done)
			}
			return
		}
		// R4 = X + k (64-bit, no wrap), R5 = R4 + size.
		emit(
			asm.Mov.Imm32(asm.R4, int32(k)), // zero-extends
			asm.Add.Reg(asm.R4, regX),
			asm.Mov.Reg(asm.R5, asm.R4),
			asm.Add.Imm(asm.R5, int32(size)),
		)
		// In the copy: R5 <= copied, and (for the verifier) R4 <= CopySize-size.
		slow = local(asm.JGT.Reg(asm.R5, regCopied, ""))
		slow2 := local(asm.JGT.Imm(asm.R4, int32(CopySize-size), ""))
		emit(asm.Mov.Reg(asm.R3, regBuf), asm.Add.Reg(asm.R3, asm.R4),
			asm.LoadMem(dst, asm.R3, 0, width[size]))
		swap(dst, size)
		done = local(asm.Ja.Label(""))
		land(slow)
		land(slow2)
		// Past the copy: reject if R5 > len, else read the packet.
		emit(asm.LoadMem(asm.R0, asm.RFP, lenOff, asm.DWord))
		branch(asm.JGT.Reg(asm.R5, asm.R0, ""), reject)
		emit(asm.LoadMem(asm.R3, asm.RFP, l3Off, asm.DWord), asm.Add.Reg(asm.R3, asm.R4))
		readPacket(dst, size, emit, branch)
		land(done)
	}
	sizeOf := func(op uint16) (int, error) {
		switch op & 0x18 {
		case szW:
			return 4, nil
		case szH:
			return 2, nil
		case szB:
			return 1, nil
		}
		return 0, fmt.Errorf("bad load size in opcode %#x", op)
	}
	memSlot := func(k uint32) (int16, error) {
		if k >= 16 {
			return 0, fmt.Errorf("scratch memory index %d out of range", k)
		}
		return int16(memOff + 4*int(k)), nil
	}
	ret := func(v int32) { emit(asm.Mov.Imm(asm.R0, v), asm.Return()) }

	for i, in := range prog {
		starts[i] = len(out)
		op, k := in.Op, in.K
		fail := func(what string) error { return fmt.Errorf("instruction %d (%#04x): %s", i, op, what) }
		switch op & 0x07 {
		case clsLD, clsLDX:
			dst := regA
			if op&0x07 == clsLDX {
				dst = regX
			}
			switch op & 0xe0 {
			case modeIMM:
				emit(asm.Mov.Imm32(dst, int32(k)))
			case modeLEN:
				emit(asm.LoadMem(dst, asm.RFP, lenOff, asm.Word))
			case modeMEM:
				off, err := memSlot(k)
				if err != nil {
					return nil, fail(err.Error())
				}
				emit(asm.LoadMem(dst, asm.RFP, off, asm.Word))
			case modeABS, modeIND:
				if dst != regA {
					return nil, fail("packet load into X")
				}
				size, err := sizeOf(op)
				if err != nil {
					return nil, fail(err.Error())
				}
				load(regA, size, k, op&0xe0 == modeIND)
			case modeMSH:
				if dst != regX || op&0x18 != szB {
					return nil, fail("bad msh load")
				}
				load(regX, 1, k, false)
				emit(asm.And.Imm32(regX, 0xf), asm.LSh.Imm32(regX, 2))
			default:
				return nil, fail("unknown load mode")
			}
		case clsST, clsSTX:
			src := regA
			if op&0x07 == clsSTX {
				src = regX
			}
			off, err := memSlot(k)
			if err != nil {
				return nil, fail(err.Error())
			}
			emit(asm.StoreMem(asm.RFP, off, src, asm.Word))
		case clsALU:
			var aop asm.ALUOp
			switch op & 0xf0 {
			case 0x00:
				aop = asm.Add
			case 0x10:
				aop = asm.Sub
			case 0x20:
				aop = asm.Mul
			case 0x30:
				aop = asm.Div
			case 0x40:
				aop = asm.Or
			case 0x50:
				aop = asm.And
			case 0x60:
				aop = asm.LSh
			case 0x70:
				aop = asm.RSh
			case 0x80:
				emit(asm.Neg.Imm32(regA, 0))
				continue
			case 0x90:
				aop = asm.Mod
			case 0xa0:
				aop = asm.Xor
			default:
				return nil, fail("unknown ALU operation")
			}
			if op&0x08 == srcX {
				if aop == asm.Div || aop == asm.Mod {
					branch(asm.JEq.Imm32(regX, 0, ""), reject)
				}
				emit(aop.Reg32(regA, regX))
				continue
			}
			switch {
			case (aop == asm.Div || aop == asm.Mod) && k == 0:
				ja(reject) // bpf_filter refuses such a program; reject
			case (aop == asm.LSh || aop == asm.RSh) && k >= 32:
				emit(asm.Mov.Imm32(regA, 0))
			default:
				emit(aop.Imm32(regA, int32(k)))
			}
		case clsJMP:
			next := i + 1
			if op&0xf0 == 0x00 { // ja
				if uint64(next)+uint64(k) >= uint64(len(prog)) {
					return nil, fail("jump out of the program")
				}
				ja(next + int(k))
				continue
			}
			jt, jf := next+int(in.Jt), next+int(in.Jf)
			if jt >= len(prog) || jf >= len(prog) {
				return nil, fail("jump out of the program")
			}
			var jop asm.JumpOp
			switch op & 0xf0 {
			case 0x10:
				jop = asm.JEq
			case 0x20:
				jop = asm.JGT
			case 0x30:
				jop = asm.JGE
			case 0x40:
				jop = asm.JSet
			default:
				return nil, fail("unknown jump")
			}
			if op&0x08 == srcX {
				branch(jop.Reg32(regA, regX, ""), jt)
			} else {
				branch(jop.Imm32(regA, int32(k), ""), jt)
			}
			ja(jf)
		case clsRET:
			switch op & 0x18 {
			case retK:
				if k != 0 {
					ret(1)
				} else {
					ret(0)
				}
			case retA, retX:
				r := regA
				if op&0x18 == retX {
					r = regX
				}
				// r0 = 0; if r == 0 goto +1; r0 = 1; exit
				skip := asm.JEq.Imm32(r, 0, "")
				skip.Offset = 1
				emit(asm.Mov.Imm(asm.R0, 0), skip.WithReference(""), asm.Mov.Imm(asm.R0, 1), asm.Return())
			default:
				return nil, fail("unknown return")
			}
		case clsMISC:
			switch op & 0xf8 {
			case miscTAX:
				emit(asm.Mov.Reg32(regX, regA))
			case miscTXA:
				emit(asm.Mov.Reg32(regA, regX))
			default:
				return nil, fail("unknown misc operation")
			}
		}
	}
	rejectAt := len(out)
	for _, j := range jumps {
		if j.target < 0 {
			ret(0) // the verifier refuses unreachable code: only when used
			break
		}
	}

	// Every instruction is one slot wide, so offsets are index differences.
	for _, j := range jumps {
		to := rejectAt
		if j.target >= 0 {
			to = starts[j.target]
		}
		if to <= j.at {
			return nil, fmt.Errorf("translated jump at %d goes backwards", j.at)
		}
		ins := out[j.at]
		ins.Offset = int16(to - j.at - 1)
		if int(ins.Offset) != to-j.at-1 {
			return nil, fmt.Errorf("program too long: jump offset %d", to-j.at-1)
		}
		out[j.at] = ins.WithReference("")
	}
	return out, nil
}

// readPacket reads size bytes at R3 into dst (host byte order) with
// bpf_probe_read_kernel, rejecting when the read fails.
func readPacket(dst asm.Register, size int, emit func(...asm.Instruction), branch func(asm.Instruction, int)) {
	emit(
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, loadOff),
		asm.Mov.Imm(asm.R2, int32(size)),
		asm.FnProbeReadKernel.Call(),
	)
	branch(asm.JNE.Imm(asm.R0, 0, ""), -1)
	switch size {
	case 1:
		emit(asm.LoadMem(dst, asm.RFP, loadOff, asm.Byte))
	case 2:
		emit(asm.LoadMem(dst, asm.RFP, loadOff, asm.Half), asm.HostTo(asm.BE, dst, asm.Half))
	case 4:
		emit(asm.LoadMem(dst, asm.RFP, loadOff, asm.Word), asm.HostTo(asm.BE, dst, asm.Word))
	}
}

// Inject replaces the body of the function StubName in spec with body
// (from Translate). It reports whether spec calls the function at all (a
// program that never reads packet headers does not). The first instruction
// keeps the stub's metadata: its symbol, BTF function and line info.
func Inject(spec *ebpf.ProgramSpec, body asm.Instructions) (bool, error) {
	insns := spec.Instructions
	start := -1
	for i, ins := range insns {
		if ins.Symbol() == StubName {
			start = i
			break
		}
	}
	if start < 0 {
		return false, nil
	}
	end := len(insns)
	for i := start + 1; i < len(insns); i++ {
		if insns[i].Symbol() != "" {
			end = i
			break
		}
	}
	b := make(asm.Instructions, len(body))
	copy(b, body)
	b[0] = b[0].WithMetadata(insns[start].Metadata)
	out := make(asm.Instructions, 0, len(insns)-(end-start)+len(b))
	out = append(out, insns[:start]...)
	out = append(out, b...)
	out = append(out, insns[end:]...)
	spec.Instructions = out
	return true, nil
}
