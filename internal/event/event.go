// Package event decodes the records the BPF probes write to the ring buffer
// into Go values, naming kernel facts (drop reasons, code locations) from
// the running kernel as it goes.
package event

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/probe"
)

// Event is one probe hit: where and when a packet was seen, and what the
// probe knew about it there.
type Event struct {
	Time    time.Time // wall clock
	Kernel  uint64    // kernel monotonic time, ns (orders events)
	Probe   string    // tracer name, e.g. "netif_receive_skb"
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
	Facts      []Fact // the probe's own facts, in display order

	// Function probes (function.go): Func is set for them; a return
	// event has Return (and fact "ret"); an entry event whose return
	// event follows has RetFollows; a clone's first event has Parent.
	Func       bool
	Return     bool
	RetFollows bool
	Parent     uint64

	// Data is the start of the packet from its IP header on, as the probe
	// saw it (with --pcap; nil otherwise or where no header was read).
	Data []byte
}

// Fact is a named value a probe reports, shown as "key value" in text and
// as a JSON key.
type Fact struct {
	Key   string
	Value any
}

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

// Decoder turns raw records into Events. The zero value decodes, but names
// neither drop reasons nor locations.
type Decoder struct {
	Reasons *kernel.Reasons
	Symbols *kernel.Symbols
	Funcs   map[uint64]string // function probes: address -> function name
	boot    time.Time         // wall-clock time of kernel monotonic zero
}

// NewDecoder returns a Decoder that names reasons and locations with r and
// s (either may be nil) and converts kernel time to wall-clock time.
func NewDecoder(r *kernel.Reasons, s *kernel.Symbols) *Decoder {
	d := &Decoder{Reasons: r, Symbols: s}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		d.boot = time.Now().Add(-time.Duration(ts.Nano()))
	}
	return d
}

// ErrShort is returned for a record shorter than the event layout.
var ErrShort = fmt.Errorf("event record shorter than %d bytes", probe.RecordSize)

// Decode decodes one ring buffer record.
func (d *Decoder) Decode(b []byte) (Event, error) {
	var r probe.Record
	if len(b) < probe.RecordSize {
		return Event{}, ErrShort
	}
	if _, err := binary.Decode(b, binary.NativeEndian, &r); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	e := d.FromRecord(&r)
	data, err := packetData(b[probe.RecordSize:])
	if err != nil {
		return Event{}, err
	}
	e.Data = data
	return e, nil
}

// packetData decodes what follows the event in a record written with a
// snapshot length (struct event_data): caplen, padding, caplen bytes. A
// record without it has nothing after the event.
func packetData(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < probe.EventDataSize {
		return nil, fmt.Errorf("event record has %d bytes after the event, fewer than a packet data header", len(b))
	}
	n := binary.NativeEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-probe.EventDataSize) {
		return nil, fmt.Errorf("event record says %d packet bytes follow, has %d", n, len(b)-probe.EventDataSize)
	}
	if n == 0 {
		return nil, nil
	}
	return append([]byte(nil), b[probe.EventDataSize:probe.EventDataSize+int(n)]...), nil
}

// FromRecord converts a raw record.
func (d *Decoder) FromRecord(r *probe.Record) Event {
	e := Event{
		Kernel:  r.Ts,
		Time:    d.boot.Add(time.Duration(r.Ts)),
		Skb:     r.Skb,
		Head:    r.Head,
		CPU:     r.Cpu,
		PID:     r.Pid,
		Comm:    cstring(r.Comm[:]),
		Netns:   r.Netns,
		Ifindex: r.Ifindex,
		Ifname:  cstring(r.Ifname[:]),
		Len:     r.Len,
		Mark:    r.Mark,
		Ret:     r.Ret,
	}
	if t := probe.ByID(r.Probe); t != nil {
		e.Probe, e.Group = t.Name, t.Group
	} else {
		e.Probe = fmt.Sprintf("probe%d", r.Probe)
	}
	p := &r.Pkt
	e.Packet = Packet{
		Source: sourceOf(r.Flags),
		Family: p.Family, Proto: p.L4, Sport: p.Sport, Dport: p.Dport,
		TCPFlags: p.TcpFlags, TTL: p.Ttl, ICMPType: p.IcmpType, ICMPCode: p.IcmpCode,
		ICMPID: p.IcmpId, ICMPSeq: p.IcmpSeq, IPLen: p.IpLen, Seq: p.TcpSeq, Ack: p.TcpAck,
	}
	switch p.Family {
	case 4:
		e.Packet.Src = netip.AddrFrom4([4]byte(p.Saddr[:4]))
		e.Packet.Dst = netip.AddrFrom4([4]byte(p.Daddr[:4]))
	case 6:
		e.Packet.Src = netip.AddrFrom16(p.Saddr)
		e.Packet.Dst = netip.AddrFrom16(p.Daddr)
	}
	d.facts(&e, r)
	return e
}

// Flags of struct event (bpf/skbtrail.h).
const (
	flagParsed   = 1
	flagFromSock = 2
	flagFlow     = 4
)

// Where a Packet's fields come from.
const (
	FromHeaders = "headers" // the packet's own headers
	FromSock    = "sock"    // the socket's addresses and ports
	FromFlow    = "flow"    // a route lookup's flow; zero fields are unknown
)

func sourceOf(flags uint32) string {
	switch {
	case flags&flagFlow != 0:
		return FromFlow
	case flags&flagFromSock != 0:
		return FromSock
	case flags&flagParsed != 0:
		return FromHeaders
	}
	return ""
}

func (d *Decoder) facts(e *Event, r *probe.Record) {
	add := func(k string, v any) { e.Facts = append(e.Facts, Fact{k, v}) }
	switch e.Probe {
	case probe.FuncProbe:
		d.function(e, r)
	case probe.KfreeSkb:
		e.ReasonCode = r.Reason
		if d.Reasons != nil {
			e.Reason = d.Reasons.Name(r.Reason)
		} else if r.Reason != 0 {
			e.Reason = fmt.Sprintf("UNKNOWN_%d", r.Reason)
		}
		if d.Symbols != nil {
			e.Location = d.Symbols.Symbolize(r.Location)
		} else {
			e.Location = fmt.Sprintf("0x%x", r.Location)
		}
	case "net_dev_xmit":
		add("rc", r.Ret)
	case "icmp_send":
		add("icmp_error", icmpError(e.Packet.Family, uint8(r.Aux), uint8(r.Aux2)))
		add("error_type", r.Aux)
		add("error_code", r.Aux2)
	case probe.FibTableLookup:
		add("table", r.Aux)
		add("err", r.Ret)
		if r.Aux2 != 0 {
			add("oif", r.Aux2)
		}
	case "qdisc_enqueue", "qdisc_dequeue":
		add("qdisc", fmt.Sprintf("%x:%x", r.Aux>>16, r.Aux&0xffff))
		add("qlen", r.Aux2)
	case "sock_rcvqueue_full":
		add("rcvbuf", r.Aux)
		add("rmem", r.Aux2)
	case "udp_fail_queue_rcv_skb":
		add("rc", r.Ret)
		add("rcvbuf", r.Aux)
		add("rmem", r.Aux2)
	case "skb_copy_datagram_iovec":
		add("copied", r.Aux)
	case probe.NFObserve:
		add("nf_family", probe.FamilyName(r.Aux2))
		add("nf_hook", probe.HookName(r.Aux))
		add("nf_priority", r.Ret)
	}
}

// icmpError names an ICMP error the kernel sends (icmp_send is IPv4 only).
func icmpError(family, typ, code uint8) string {
	switch typ {
	case 3:
		names := []string{"net unreachable", "host unreachable", "protocol unreachable",
			"port unreachable", "fragmentation needed", "source route failed",
			"net unknown", "host unknown", "source host isolated", "net prohibited",
			"host prohibited", "net unreachable for TOS", "host unreachable for TOS",
			"administratively prohibited", "host precedence violation", "precedence cutoff"}
		if int(code) < len(names) {
			return names[code]
		}
		return fmt.Sprintf("destination unreachable code %d", code)
	case 11:
		if code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "TTL exceeded"
	case 12:
		return "parameter problem"
	case 5:
		return "redirect"
	}
	return fmt.Sprintf("type %d code %d", typ, code)
}

func cstring(b []int8) string {
	buf := make([]byte, 0, len(b))
	for _, c := range b {
		if c == 0 {
			break
		}
		buf = append(buf, byte(c))
	}
	return string(bytes.ToValidUTF8(buf, []byte("?")))
}

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
			return icmpError(4, typ, code)
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
