package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Files the feature probes read.
const (
	lockdownPath = "/sys/kernel/security/lockdown"
	kprobePMU    = "/sys/bus/event_source/devices/kprobe"
)

// probeTracepoint is the tracepoint the tp_btf and raw_tp probes attach to.
const probeTracepoint = "netif_receive_skb"

// probeFuncs are functions of the network stack that kprobe, kprobe.multi
// and fentry probes attach to, in order of preference.
var probeFuncs = []string{"ip_rcv", "kfree_skb_reason", "sk_skb_reason_drop", "__kfree_skb"}

// probeName names the programs the probes load (visible in bpftool while
// a probe runs).
const probeName = "skbtrail_feat"

// Support says whether the running kernel supports a feature.
type Support struct {
	OK     bool
	Detail string // why not, for the user: "load failed: operation not permitted (lockdown?)"
}

// String returns "yes", or "no: " and the detail.
func (s Support) String() string {
	if s.OK {
		return "yes"
	}
	return "no: " + s.Detail
}

// Version is the running kernel's release.
type Version struct {
	Release      string // as uname -r prints it: "6.12.38+deb13-amd64"
	Major, Minor int    // 6 and 12; 0 when Release does not start with them
}

// AtLeast reports whether the version is major.minor or later. Use it to
// explain, never to decide what the kernel supports: Features does that.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// Features is what the running kernel lets skbtrail use. Each probe
// source is found by loading and attaching a tiny program the way
// skbtrail would, then detaching it, never from version tables.
type Features struct {
	Version Version

	BTF           Support // kernel BTF at /sys/kernel/btf/vmlinux
	TpBtf         Support // BTF tracepoints (tp_btf), tried on netif_receive_skb
	RawTp         Support // raw tracepoints (raw_tp), tried on netif_receive_skb
	Kprobe        Support // kprobes through perf events, tried on ip_rcv or a drop function
	KprobeMulti   Support // kprobe.multi links (fprobe)
	Fentry        Support // fentry and fexit tracing programs
	NetfilterLink Support // BPF netfilter links, tried at IPv4 LOCAL_IN in the current netns

	// Lockdown is the kernel lockdown mode ("none", "integrity",
	// "confidentiality") or "unknown" when securityfs does not show it.
	Lockdown string
}

var detect = sync.OnceValue(func() Features {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: without
	// this every load fails with EPERM. Newer kernels need nothing, and
	// on error the probes below say what failed.
	_ = rlimit.RemoveMemlock()

	f := Features{Version: kernelVersion(), Lockdown: lockdownMode()}
	spec, err := BTF()
	if err != nil {
		f.BTF = Support{Detail: err.Error()}
	} else {
		f.BTF = Support{OK: true}
	}
	p := prober{spec: spec, lockdown: f.Lockdown}
	f.TpBtf = p.tpBtf()
	f.RawTp = p.rawTp()
	sym := kernelFunc()
	f.Kprobe = p.kprobe(sym)
	f.KprobeMulti = p.kprobeMulti(sym)
	f.Fentry = p.fentry()
	f.NetfilterLink = p.netfilterLink()
	return f
})

// Detect probes the running kernel once and returns what it supports;
// later calls return the same result. Probing needs root (CAP_BPF,
// CAP_PERFMON, CAP_NET_ADMIN), takes up to a few hundred milliseconds
// (most of it loading BTF, which BTF then caches), and leaves nothing
// attached; the kernel frees the probe programs shortly after. On kernels that charge BPF memory to RLIMIT_MEMLOCK
// (before 5.11) it lifts that limit for the process, as any BPF loader must.
func Detect() Features {
	return detect()
}

// RunningVersion is the running kernel's release, from uname: cheap, for
// messages and tests (Features says what the kernel supports).
func RunningVersion() Version { return kernelVersion() }

// kernelVersion reads the release from uname.
func kernelVersion() Version {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return Version{}
	}
	v := Version{Release: unix.ByteSliceToString(uts.Release[:])}
	fmt.Sscanf(v.Release, "%d.%d", &v.Major, &v.Minor)
	return v
}

// lockdownMode returns the bracketed mode of "none [integrity] confidentiality".
func lockdownMode() string {
	b, err := os.ReadFile(lockdownPath)
	if err != nil {
		return "unknown"
	}
	_, rest, ok := bytes.Cut(b, []byte("["))
	mode, _, ok2 := bytes.Cut(rest, []byte("]"))
	if !ok || !ok2 || len(mode) == 0 {
		return "unknown"
	}
	return string(mode)
}

// prober holds what the probes share.
type prober struct {
	spec     *btf.Spec // nil without kernel BTF
	lockdown string
}

// ret returns the instructions of a program that returns rc.
func ret(rc int32) asm.Instructions {
	return asm.Instructions{asm.Mov.Imm(asm.R0, rc), asm.Return()}
}

// load loads a program of spec, naming and licensing it.
func load(spec *ebpf.ProgramSpec) (*ebpf.Program, error) {
	spec.Name = probeName
	spec.License = "GPL"
	if spec.Instructions == nil {
		spec.Instructions = ret(0)
	}
	return ebpf.NewProgramWithOptions(spec, ebpf.ProgramOptions{LogDisabled: true})
}

// try loads a program of spec, attaches it with attach and detaches it.
func (p prober) try(spec *ebpf.ProgramSpec, attach func(*ebpf.Program) (link.Link, error)) Support {
	prog, err := load(spec)
	if err != nil {
		return p.failed("load", err)
	}
	defer prog.Close()
	l, err := attach(prog)
	if err != nil {
		return p.failed("attach", err)
	}
	if err := l.Close(); err != nil {
		return p.failed("detach", err)
	}
	return Support{OK: true}
}

// failed explains why step (load, attach) failed, briefly.
func (p prober) failed(step string, err error) Support {
	var why string
	var errno syscall.Errno
	switch {
	case errors.Is(err, ebpf.ErrNotSupported):
		why = "not supported by this kernel"
	case errors.Is(err, syscall.EPERM) && os.Geteuid() != 0:
		why = "operation not permitted (run as root)"
	case errors.Is(err, syscall.EPERM) && p.lockdown == "unknown":
		why = "operation not permitted (lockdown?)"
	case errors.Is(err, syscall.EPERM) && p.lockdown != "none":
		why = "operation not permitted (lockdown: " + p.lockdown + ")"
	case errors.Is(err, syscall.EPERM):
		why = "operation not permitted (seccomp or a security module?)"
	case errors.As(err, &errno):
		why = errno.Error()
	default:
		why, _, _ = strings.Cut(err.Error(), "\n")
	}
	return Support{Detail: step + " failed: " + why}
}

func (p prober) tpBtf() Support {
	if p.spec == nil {
		return Support{Detail: "needs kernel BTF"}
	}
	if !HasTracepoint(p.spec, probeTracepoint) {
		return Support{Detail: "no btf_trace_" + probeTracepoint + " in kernel BTF"}
	}
	return p.try(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: probeTracepoint},
		func(prog *ebpf.Program) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		})
}

func (p prober) rawTp() Support {
	if err := features.HaveProgramType(ebpf.RawTracepoint); err != nil {
		return p.failed("load", err)
	}
	return p.try(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint},
		func(prog *ebpf.Program) (link.Link, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: probeTracepoint, Program: prog})
		})
}

// kernelFunc returns the first of probeFuncs that /proc/kallsyms lists as
// a text symbol (names show even when addresses are hidden), or the first
// of probeFuncs when kallsyms cannot be read.
func kernelFunc() string {
	for _, name := range probeFuncs {
		if has, known := HasSymbol(name); has || !known {
			return name
		}
	}
	return probeFuncs[0]
}

func (p prober) kprobe(sym string) Support {
	s := p.try(&ebpf.ProgramSpec{Type: ebpf.Kprobe},
		func(prog *ebpf.Program) (link.Link, error) { return link.Kprobe(sym, prog, nil) })
	if !s.OK {
		if _, err := os.Stat(kprobePMU); errors.Is(err, os.ErrNotExist) {
			s.Detail = "CONFIG_KPROBES off: " + kprobePMU + " missing"
		}
		return s
	}
	// skbtrail's kprobe programs learn their function from the attach
	// cookie or bpf_get_func_ip, both Linux 5.15.
	if s := p.helpers(ebpf.ProgramSpec{Type: ebpf.Kprobe}, getFuncIP); !s.OK {
		s.Detail = "kprobes attach, but " + s.Detail
		return s
	}
	return s
}

// A helper skbtrail's function programs call, and the release that gave
// it to them.
type helper struct {
	fn    asm.BuiltinFunc
	name  string
	since string
}

var (
	getFuncIP  = helper{asm.FnGetFuncIp, "bpf_get_func_ip", "5.15"}
	getFuncRet = helper{asm.FnGetFuncRet, "bpf_get_func_ret", "5.17"}
)

// helpers loads, for each helper, a program of spec's kind that calls it
// (with the context and a pointer to 8 zeroed stack bytes) and says which
// the kernel does not offer: a kernel that attaches a probe program but
// rejects one of these cannot run skbtrail's programs of that source.
func (p prober) helpers(spec ebpf.ProgramSpec, hs ...helper) Support {
	for _, h := range hs {
		s := spec
		s.Name, s.License = probeName, "GPL"
		s.Instructions = asm.Instructions{
			asm.Mov.Imm(asm.R3, 0),
			asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -8),
			h.fn.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		}
		prog, err := ebpf.NewProgramWithOptions(&s, ebpf.ProgramOptions{LogLevel: ebpf.LogLevelBranch})
		if err == nil {
			prog.Close()
			continue
		}
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) && strings.Contains(strings.Join(ve.Log, "\n"), "func") && errors.Is(err, unix.EINVAL) {
			// "invalid func unknown#173", "unknown func bpf_get_func_ip#173",
			// "program of this type cannot use helper bpf_get_func_ip#173"
			return Support{Detail: fmt.Sprintf("the kernel has no %s for them (Linux %s+), which skbtrail's programs need to know their function", h.name, h.since)}
		}
		return p.failed("load with "+h.name, err)
	}
	return Support{OK: true}
}

func (p prober) kprobeMulti(sym string) Support {
	if err := features.HaveBPFLinkKprobeMulti(); err != nil {
		s := p.failed("attach", err)
		if errors.Is(err, ebpf.ErrNotSupported) {
			s.Detail = "not supported by this kernel (no kprobe.multi links, or CONFIG_FPROBE off)"
		}
		return s
	}
	return p.try(&ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti},
		func(prog *ebpf.Program) (link.Link, error) {
			return link.KprobeMulti(prog, link.KprobeMultiOptions{Symbols: []string{sym}})
		})
}

// fentry tries fentry and then fexit on the first of probeFuncs in BTF.
func (p prober) fentry() Support {
	if p.spec == nil {
		return Support{Detail: "needs kernel BTF"}
	}
	target := ""
	for _, name := range probeFuncs {
		var fn *btf.Func
		if p.spec.TypeByName(name, &fn) == nil {
			target = name
			break
		}
	}
	if target == "" {
		return Support{Detail: "none of " + strings.Join(probeFuncs, ", ") + " in kernel BTF"}
	}
	for _, kind := range []struct {
		name string
		at   ebpf.AttachType
	}{{"fentry", ebpf.AttachTraceFEntry}, {"fexit", ebpf.AttachTraceFExit}} {
		s := p.try(&ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: kind.at, AttachTo: target},
			func(prog *ebpf.Program) (link.Link, error) {
				return link.AttachTracing(link.TracingOptions{Program: prog, AttachType: kind.at})
			})
		if !s.OK {
			s.Detail = kind.name + " " + target + ": " + s.Detail
			return s
		}
		hs := []helper{getFuncIP}
		if kind.at == ebpf.AttachTraceFExit {
			hs = append(hs, getFuncRet)
		}
		spec := ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: kind.at, AttachTo: target}
		if s := p.helpers(spec, hs...); !s.OK {
			s.Detail = kind.name + " " + target + " attaches, but " + s.Detail
			return s
		}
	}
	return Support{OK: true}
}

func (p prober) netfilterLink() Support {
	if err := features.HaveProgramType(ebpf.Netfilter); err != nil {
		return p.failed("load", err)
	}
	const accept = 1 // NF_ACCEPT
	return p.try(&ebpf.ProgramSpec{Type: ebpf.Netfilter, AttachType: ebpf.AttachNetfilter, Instructions: ret(accept)},
		func(prog *ebpf.Program) (link.Link, error) {
			return link.AttachNetfilter(link.NetfilterOptions{
				Program:        prog,
				ProtocolFamily: link.NetfilterProtoIPv4,
				Hook:           link.NetfilterInetLocalIn,
			})
		})
}
