// Package event is skbtrail's vocabulary: what the BPF probes and every
// stage above them say to each other. Probe ids, the ring buffer record
// layout, events with their typed facts, and netfilter families, hooks and
// verdicts. It depends on nothing: decode fills it, and track, diag, output
// and the sessions read it.
package event

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Event is one probe hit: where and when a packet was seen, and what the
// probe knew about it there.
type Event struct {
	Time    time.Time // wall clock
	Kernel  uint64    // kernel monotonic time, ns (orders events)
	Probe   Probe     // what wrote it
	Name    string    // the tracepoint's or function's name, e.g. "netif_receive_skb"
	Group   string    // tracer group, e.g. "link"
	Skb     uint64    // skb address; 0 for probes without an skb
	Head    uint64    // the skb's data buffer; clones share their original's
	CPU     uint32
	PID     uint32
	Comm    string
	Netns   uint32 // network namespace inode
	Ifindex uint32
	Ifname  string
	Len     uint32
	Mark    uint32
	Packet  Packet

	Reason     string // drop reason name (kfree_skb)
	ReasonCode uint32
	Location   string // function+0xoff that dropped it (kfree_skb)
	Ret        int32  // the probe's return or error code, where it has one
	Facts      Facts  // the probe's own facts (see Fields)

	// Function probes: Probe is FuncEntry, FuncReturn or FuncClone and
	// Name the function; an entry event whose return event follows has
	// RetFollows; a clone's first event has Parent.
	RetFollows bool
	Parent     uint64

	// Data is the start of the packet from its IP header on, as the probe
	// saw it (with --pcap; nil otherwise or where no header was read).
	Data []byte
}

// Func reports whether a function probe wrote the event.
func (e *Event) Func() bool { return e.Probe.Func() }

// Return reports whether the event is a function's return.
func (e *Event) Return() bool { return e.Probe == FuncReturn }

// Ends reports whether the event ends its skb's life: a drop or a free.
func (e *Event) Ends() bool { return e.Probe == KfreeSkb || e.Probe == ConsumeSkb }

// Packet is the L3/L4 summary of the packet as a probe saw it.
type Packet struct {
	Source   string // FromHeaders, FromSock, FromFlow, or "" when nothing was read
	Family   uint8  // 4, 6, or 0 when the headers were not readable
	Proto    uint8  // IPPROTO_*
	Src, Dst netip.Addr
	Sport    uint16
	Dport    uint16
	TCPFlags uint8
	TTL      uint8
	ICMPType uint8
	ICMPCode uint8
	ICMPID   uint16
	ICMPSeq  uint16
	IPLen    uint16
	Seq, Ack uint32
}

// Where a Packet's fields come from.
const (
	FromHeaders = "headers" // the packet's own headers
	FromSock    = "sock"    // the socket's addresses and ports
	FromFlow    = "flow"    // a route lookup's flow; zero fields are unknown
)

// ProtoName is the name of an IP protocol number as users write it.
func ProtoName(p uint8) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 58:
		return "icmp6"
	case 0:
		return ""
	}
	return fmt.Sprintf("%d", p)
}

// Flags renders TCP flags as letters in tcpdump's order: F S R P A U E C.
func Flags(f uint8) string {
	const letters = "FSRPAUEC"
	var b strings.Builder
	for i := 0; i < 8; i++ {
		if f&(1<<i) != 0 {
			b.WriteByte(letters[i])
		}
	}
	return b.String()
}

// String summarises the packet: "tcp 198.18.0.1:40000 > 198.18.0.2:80 S seq 1",
// "icmp 198.18.0.1 > 198.18.0.2 echo request id 7 seq 1".
func (p Packet) String() string {
	if p.Family == 0 {
		return ""
	}
	var b strings.Builder
	name := ProtoName(p.Proto)
	if name == "" {
		name = "ip"
	}
	if p.Source == FromFlow {
		b.WriteString("flow ")
	}
	b.WriteString(name)
	b.WriteByte(' ')
	switch p.Proto {
	case 6, 17:
		fmt.Fprintf(&b, "%s > %s", netip.AddrPortFrom(p.Src, p.Sport), netip.AddrPortFrom(p.Dst, p.Dport))
	default:
		fmt.Fprintf(&b, "%s > %s", p.Src, p.Dst)
	}
	if p.Source != FromHeaders {
		return b.String()
	}
	switch p.Proto {
	case 6:
		fmt.Fprintf(&b, " %s seq %d", Flags(p.TCPFlags), p.Seq)
		if p.TCPFlags&0x10 != 0 {
			fmt.Fprintf(&b, " ack %d", p.Ack)
		}
	case 1, 58:
		b.WriteByte(' ')
		b.WriteString(ICMPName(p.Proto, p.ICMPType, p.ICMPCode))
		if isEcho(p.Proto, p.ICMPType) {
			fmt.Fprintf(&b, " id %d seq %d", p.ICMPID, p.ICMPSeq)
		}
	}
	return b.String()
}

func isEcho(proto, typ uint8) bool {
	if proto == 1 {
		return typ == 0 || typ == 8
	}
	return typ == 128 || typ == 129
}

// ICMPName names an ICMP or ICMPv6 message type.
func ICMPName(proto, typ, code uint8) string {
	if proto == 1 {
		switch typ {
		case 0:
			return "echo reply"
		case 8:
			return "echo request"
		case 3, 11, 12, 5:
			return ICMPError{Type: typ, Code: code}.Name(4)
		}
	} else {
		switch typ {
		case 1:
			return "destination unreachable"
		case 2:
			return "packet too big"
		case 3:
			return "time exceeded"
		case 4:
			return "parameter problem"
		case 128:
			return "echo request"
		case 129:
			return "echo reply"
		case 133:
			return "router solicitation"
		case 134:
			return "router advertisement"
		case 135:
			return "neighbor solicitation"
		case 136:
			return "neighbor advertisement"
		}
	}
	return fmt.Sprintf("type %d code %d", typ, code)
}
