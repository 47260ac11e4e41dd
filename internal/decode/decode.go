// Package decode turns the records the BPF probes write to the ring buffer
// into events, naming kernel facts (drop reasons, code locations, function
// names) with what the caller read from the running kernel.
package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/event"
)

// Reasons names drop reasons (kernel.Reasons).
type Reasons interface{ Name(code uint32) string }

// Symbols names code addresses as function+0xoff (kernel.Symbols).
type Symbols interface{ Symbolize(addr uint64) string }

// Decoder turns raw records into Events. The zero value decodes, but names
// neither drop reasons nor locations.
type Decoder struct {
	Reasons Reasons
	Symbols Symbols
	Funcs   map[uint64]string // function probes: address -> function name
	boot    time.Time         // wall-clock time of kernel monotonic zero
}

// New returns a Decoder that names reasons and locations with r and s
// (either may be nil) and converts kernel time to wall-clock time.
func New(r Reasons, s Symbols) *Decoder {
	d := &Decoder{Reasons: r, Symbols: s}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		d.boot = time.Now().Add(-time.Duration(ts.Nano()))
	}
	return d
}

// ErrShort is returned for a record shorter than the event layout.
var ErrShort = fmt.Errorf("event record shorter than %d bytes", event.RecordSize)

// Decode decodes one ring buffer record.
func (d *Decoder) Decode(b []byte) (event.Event, error) {
	var r event.Record
	if len(b) < event.RecordSize {
		return event.Event{}, ErrShort
	}
	if _, err := binary.Decode(b, binary.NativeEndian, &r); err != nil {
		return event.Event{}, fmt.Errorf("decode event: %w", err)
	}
	e := d.FromRecord(&r)
	data, err := packetData(b[event.RecordSize:])
	if err != nil {
		return event.Event{}, err
	}
	e.Data = data
	return e, nil
}

// packetData decodes what follows the event in a record written with a
// snapshot length (struct event_data): caplen, padding, caplen bytes. A
// record without it has nothing after the event.
func packetData(b []byte) ([]byte, error) {
	const hdr = event.DataHeaderSize
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < hdr {
		return nil, fmt.Errorf("event record has %d bytes after the event, fewer than a packet data header", len(b))
	}
	n := binary.NativeEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-hdr) {
		return nil, fmt.Errorf("event record says %d packet bytes follow, has %d", n, len(b)-hdr)
	}
	if n == 0 {
		return nil, nil
	}
	return append([]byte(nil), b[hdr:hdr+int(n)]...), nil
}

// FromRecord converts a raw record.
func (d *Decoder) FromRecord(r *event.Record) event.Event {
	e := event.Event{
		Kernel:  r.Ts,
		Time:    d.boot.Add(time.Duration(r.Ts)),
		Probe:   event.Probe(r.Probe),
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
	e.Name = e.Probe.String()
	if t := catalog.ByProbe(e.Probe); t != nil {
		e.Group = t.Group
	}
	p := &r.Pkt
	e.Packet = event.Packet{
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

func sourceOf(flags uint32) string {
	switch {
	case flags&event.FlagFlow != 0:
		return event.FromFlow
	case flags&event.FlagFromSock != 0:
		return event.FromSock
	case flags&event.FlagParsed != 0:
		return event.FromHeaders
	}
	return ""
}

// facts fills the event's typed facts from the probe-specific fields of
// its record (aux, aux2, reason, location).
func (d *Decoder) facts(e *event.Event, r *event.Record) {
	f := &e.Facts
	switch e.Probe {
	case event.FuncEntry, event.FuncReturn, event.FuncClone:
		d.function(e, r)
	case event.KfreeSkb:
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
	case event.ICMPSend:
		f.ICMP = event.ICMPError{Type: uint8(r.Aux), Code: uint8(r.Aux2)}
	case event.FibTableLookup:
		f.Route = event.Route{Table: r.Aux, Err: r.Ret, Oif: r.Aux2}
	case event.Fib6TableLookup:
		f.Route = event.Route{Table: r.Aux, Type: uint8(r.Aux2)}
		f.Route.Err = f.Route.TypeErr()
	case event.QdiscEnqueue, event.QdiscDequeue:
		f.Qdisc = event.Qdisc{Handle: r.Aux, Qlen: r.Aux2}
	case event.SockRcvqueueFull, event.UDPFailQueueRcvSkb:
		f.Buf = event.SockBuf{Rcvbuf: r.Aux, Rmem: r.Aux2}
	case event.SkbCopyDatagramIovec:
		f.Copied = r.Aux
	case event.NFObserve:
		f.Hook = event.HookPoint{Family: event.Family(r.Aux2), Hook: event.Hook(r.Aux), Priority: r.Ret}
	}
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
