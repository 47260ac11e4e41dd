package event

import "fmt"

// Facts are what a probe knows beyond the packet. Which fields are set
// depends on the event's Probe; Fields lists the ones that are, in display
// order, with the keys text and JSON output use.
type Facts struct {
	Route  Route     // fib_table_lookup
	ICMP   ICMPError // icmp_send: the error the kernel sends
	Qdisc  Qdisc     // qdisc_enqueue, qdisc_dequeue
	Buf    SockBuf   // sock_rcvqueue_full, udp_fail_queue_rcv_skb
	Copied uint32    // skb_copy_datagram_iovec: bytes copied to the reader
	Hook   HookPoint // nf_observe: where the observer sits
	Table  IPTable   // ipt_do_table / ip6t_do_table returns
}

// Route is a route lookup's result (fib_table_lookup): the table asked,
// the error (0: found; -EAGAIN: try the next rule) and the output device.
type Route struct {
	Table uint32
	Err   int32
	Oif   uint32 // 0 when unknown
	Type  uint8  // fib6_table_lookup: the route's type (RTN_*), RouteNone when none was found
}

// RouteNone is the Type of an IPv6 lookup that found no route.
const RouteNone = 0xff

// Route types (RTN_*) that refuse a packet.
const (
	RouteBlackhole   = 6
	RouteUnreachable = 7
	RouteProhibit    = 8
)

// TypeErr is the error an IPv6 route of this type gives, as IPv4's lookup
// reports it (0 for a route that leads somewhere): -EINVAL blackhole,
// -EHOSTUNREACH unreachable, -EACCES prohibit.
func (r Route) TypeErr() int32 {
	switch r.Type {
	case RouteBlackhole:
		return -22
	case RouteUnreachable:
		return -113
	case RouteProhibit:
		return -13
	}
	// RouteNone: no route in this table; IPv6 goes on to the next table
	// (local, then main), so it is no failure by itself.
	return 0
}

// TypeName names the route type as ip-route does.
func (r Route) TypeName() string {
	names := map[uint8]string{1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
		RouteBlackhole: "blackhole", RouteUnreachable: "unreachable", RouteProhibit: "prohibit", 9: "throw", RouteNone: "none"}
	if n, ok := names[r.Type]; ok {
		return n
	}
	return fmt.Sprintf("type%d", r.Type)
}

// ICMPError is an ICMP error message: type and code.
type ICMPError struct {
	Type, Code uint8
}

// Qdisc is a queueing discipline and its length.
type Qdisc struct {
	Handle uint32 // major<<16 | minor
	Qlen   uint32
}

// HandleString is the handle as tc writes it ("1:0").
func (q Qdisc) HandleString() string { return fmt.Sprintf("%x:%x", q.Handle>>16, q.Handle&0xffff) }

// SockBuf is a socket's receive buffer: its limit and what is queued.
type SockBuf struct {
	Rcvbuf, Rmem uint32
}

// HookPoint is a netfilter hook and a priority in it.
type HookPoint struct {
	Family   Family
	Hook     Hook
	Priority int32
}

// IPTable is what an iptables table decided (ipt_do_table's return).
type IPTable struct {
	Name    string // "" when the event is no ipt_do_table return
	Hook    Hook   // its built-in chain
	Verdict Verdict
}

// Field is one fact as output shows it: "key value" in text, a JSON key.
// Value is a number (int64 or uint32) or a string.
type Field struct {
	Key   string
	Value any
}

// Fields returns the event's facts in display order.
func (e *Event) Fields() []Field {
	var out []Field
	add := func(k string, v any) { out = append(out, Field{k, v}) }
	f := &e.Facts
	switch e.Probe {
	case NetDevXmit:
		add("rc", e.Ret)
	case ICMPSend:
		add("icmp_error", f.ICMP.Name(e.Packet.Family))
		add("error_type", uint32(f.ICMP.Type))
		add("error_code", uint32(f.ICMP.Code))
	case Fib6TableLookup:
		add("table", f.Route.Table)
		add("route_type", f.Route.TypeName())
	case FibTableLookup:
		add("table", f.Route.Table)
		add("err", e.Ret)
		if f.Route.Oif != 0 {
			add("oif", f.Route.Oif)
		}
	case QdiscEnqueue, QdiscDequeue:
		add("qdisc", f.Qdisc.HandleString())
		add("qlen", f.Qdisc.Qlen)
	case SockRcvqueueFull:
		add("rcvbuf", f.Buf.Rcvbuf)
		add("rmem", f.Buf.Rmem)
	case UDPFailQueueRcvSkb:
		add("rc", e.Ret)
		add("rcvbuf", f.Buf.Rcvbuf)
		add("rmem", f.Buf.Rmem)
	case SkbCopyDatagramIovec:
		add("copied", f.Copied)
	case NFObserve:
		add("nf_family", f.Hook.Family.String())
		add("nf_hook", f.Hook.Hook.String())
		add("nf_priority", f.Hook.Priority)
	case FuncReturn:
		add("ret", e.Ret)
		if f.Table.Name != "" {
			add("nf_table", f.Table.Name)
			add("nf_chain", f.Table.Hook.Chain())
			add("nf_verdict", f.Table.Verdict.String())
		}
	case FuncClone:
		add("clone_of", fmt.Sprintf("0x%x", e.Parent))
	}
	return out
}

// Name names an ICMP error the kernel sends (icmp_send is IPv4 only).
func (c ICMPError) Name(family uint8) string {
	switch c.Type {
	case 3:
		names := []string{"net unreachable", "host unreachable", "protocol unreachable",
			"port unreachable", "fragmentation needed", "source route failed",
			"net unknown", "host unknown", "source host isolated", "net prohibited",
			"host prohibited", "net unreachable for TOS", "host unreachable for TOS",
			"administratively prohibited", "host precedence violation", "precedence cutoff"}
		if int(c.Code) < len(names) {
			return names[c.Code]
		}
		return fmt.Sprintf("destination unreachable code %d", c.Code)
	case 11:
		if c.Code == 1 {
			return "fragment reassembly time exceeded"
		}
		return "TTL exceeded"
	case 12:
		return "parameter problem"
	case 5:
		return "redirect"
	}
	return fmt.Sprintf("type %d code %d", c.Type, c.Code)
}
