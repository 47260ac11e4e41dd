// Package pcapfilter compiles tcpdump filter expressions (pcap-filter(7))
// for packets that start at their IP header (IPv4 or IPv6), in pure Go, and
// translates the program into eBPF that the probes run on a packet's IP
// header.
//
// Expressions compile to classic BPF, as libpcap compiles them, and then
// go through the one translation to eBPF (Translate) that the kernel tests
// check. Classic BPF is what libpcap emits, so the tests compare our
// programs with libpcap's (made by tcpdump -ddd, in tests only) instruction
// set to instruction set, on the same interpreter (Run).
//
// The semantics are libpcap's for DLT_RAW: "ip" and "ip6" test the version
// nibble; transport fields (ports, tcp[...]) of IPv4 are read only in the
// first fragment; an IPv6 packet's protocol is the next header after the
// fixed header (or after a fragment header, for "tcp", "ip6 proto" and the
// like), except with protochain, which follows the header chain. A load
// beyond the packet rejects it, and libpcap's optimizations that drop
// loads are made too, so that a truncated packet gets libpcap's verdict.
// What needs the link layer (ether, vlan, arp, ...) is refused with a
// message that says what to use instead.
//
// Where skbtrail differs from tcpdump: host and network names are not
// looked up (write addresses); port names come from a built-in table of
// Debian's /etc/services; "ip broadcast" knows no netmask, so it is what
// tcpdump makes reading a file: destination 255.255.255.255 or 0.0.0.0;
// protochain follows at most 8 headers (libpcap's loop has no bound).
package pcapfilter

import (
	"errors"
	"fmt"

	"golang.org/x/net/bpf"
)

// SnapLen is what a program returns for a packet it accepts: the largest
// packet the kernel can hand over. Filters such as "greater" and "len"
// compare against the packet's length, not this.
const SnapLen = 262144

// ErrInvalid is wrapped by the error Compile returns for an expression it
// does not accept.
var ErrInvalid = errors.New("invalid filter expression")

// exprError is a message about an expression; it wraps ErrInvalid.
type exprError string

func (e exprError) Error() string { return string(e) }
func (e exprError) Unwrap() error { return ErrInvalid }

// Compile compiles a tcpdump filter expression for packets that start at
// their IP header (IPv4 or IPv6) into classic BPF. A bad expression gives
// a one-line message in the manner of tcpdump's, wrapping ErrInvalid.
func Compile(expr string) ([]bpf.RawInstruction, error) {
	b, err := parse(expr)
	var prog []bpf.RawInstruction
	if err == nil {
		var ok bool
		if prog, ok = generate(b); !ok {
			err = errors.New("expression rejects all packets")
		}
	}
	if err != nil {
		return nil, exprError(fmt.Sprintf("filter expression %q: %v", expr, err))
	}
	return prog, nil
}
