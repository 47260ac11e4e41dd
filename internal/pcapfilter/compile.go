// Package pcapfilter compiles tcpdump filter expressions (pcap-filter(7))
// with libpcap's own compiler, and translates the classic BPF program it
// makes into eBPF that the probes run on a packet's IP header.
//
// libpcap is linked statically (Debian's libpcap-dev ships libpcap.a), so
// the skbtrail binary does not need libpcap at run time. Build
// prerequisite: libpcap-dev.
package pcapfilter

/*
#cgo LDFLAGS: -l:libpcap.a
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pcap/pcap.h>

// compile compiles expr for raw IP (DLT_RAW: the program starts at the IP
// header). On error it returns NULL and libpcap's message in err.
static struct bpf_insn *compile(const char *expr, int snaplen, unsigned *n, char *err, size_t errlen)
{
	struct bpf_program prog;
	struct bpf_insn *out = NULL;
	pcap_t *p = pcap_open_dead(DLT_RAW, snaplen);

	if (!p) {
		snprintf(err, errlen, "pcap_open_dead failed");
		return NULL;
	}
	if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) < 0) {
		snprintf(err, errlen, "%s", pcap_geterr(p));
		pcap_close(p);
		return NULL;
	}
	out = malloc(prog.bf_len * sizeof(*out));
	if (out) {
		memcpy(out, prog.bf_insns, prog.bf_len * sizeof(*out));
		*n = prog.bf_len;
	} else {
		snprintf(err, errlen, "out of memory");
	}
	pcap_freecode(&prog);
	pcap_close(p);
	return out;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/net/bpf"
)

// SnapLen is the snapshot length the expressions are compiled for: the
// largest packet the kernel can hand over. Filters such as "greater" and
// "len" compare against the packet's length, not this.
const SnapLen = 262144

// ErrInvalid is wrapped by the error Compile returns for an expression
// libpcap does not accept.
var ErrInvalid = errors.New("invalid filter expression")

// exprError is libpcap's message about an expression; it wraps ErrInvalid.
type exprError string

func (e exprError) Error() string { return string(e) }
func (e exprError) Unwrap() error { return ErrInvalid }

// pcap_compile is not thread-safe in older libpcap versions.
var mu sync.Mutex

// Compile compiles a tcpdump filter expression for packets that start at
// their IP header (IPv4 or IPv6). A bad expression gives libpcap's own
// message, wrapping ErrInvalid.
func Compile(expr string) ([]bpf.RawInstruction, error) {
	cexpr := C.CString(expr)
	defer C.free(unsafe.Pointer(cexpr))
	var errbuf [C.PCAP_ERRBUF_SIZE]C.char
	var n C.unsigned

	mu.Lock()
	insns := C.compile(cexpr, SnapLen, &n, &errbuf[0], C.size_t(len(errbuf)))
	mu.Unlock()
	if insns == nil {
		msg := strings.ReplaceAll(C.GoString(&errbuf[0]), "\n", " ")
		return nil, exprError(fmt.Sprintf("filter expression %q: %s", expr, msg))
	}
	defer C.free(unsafe.Pointer(insns))
	raw := unsafe.Slice(insns, int(n))
	out := make([]bpf.RawInstruction, len(raw))
	for i, in := range raw {
		out[i] = bpf.RawInstruction{Op: uint16(in.code), Jt: uint8(in.jt), Jf: uint8(in.jf), K: uint32(in.k)}
	}
	return out, nil
}

// Run runs a classic BPF program on pkt with libpcap's own interpreter
// (bpf_filter) and returns its result: 0 for no match, otherwise the number
// of bytes to capture. wirelen is the packet's length on the wire.
func Run(prog []bpf.RawInstruction, pkt []byte, wirelen uint32) uint32 {
	if len(prog) == 0 {
		return 0
	}
	cp := (*C.struct_bpf_insn)(C.malloc(C.size_t(len(prog)) * C.size_t(unsafe.Sizeof(C.struct_bpf_insn{}))))
	defer C.free(unsafe.Pointer(cp))
	ins := unsafe.Slice(cp, len(prog))
	for i, in := range prog {
		ins[i] = C.struct_bpf_insn{code: C.u_short(in.Op), jt: C.u_char(in.Jt), jf: C.u_char(in.Jf), k: C.bpf_u_int32(in.K)}
	}
	var buf *C.u_char
	if len(pkt) > 0 {
		buf = (*C.u_char)(C.CBytes(pkt))
		defer C.free(unsafe.Pointer(buf))
	}
	return uint32(C.bpf_filter(cp, buf, C.u_int(wirelen), C.u_int(len(pkt))))
}
