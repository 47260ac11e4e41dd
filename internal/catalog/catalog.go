// Package catalog lists the probe points skbtrail knows: the tracepoints,
// the curated kernel functions, their groups as in nettrace's tracer tree,
// and how a -t value selects them. It says what exists, not what this kernel
// has: the probe packages find that out when they load.
package catalog

import (
	"fmt"
	"sort"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
)

// A Tracer is one probe point skbtrail can attach: a kernel tracepoint, or
// (Func) a kernel function watched with a function probe (functions.go).
type Tracer struct {
	Name   string      // tracepoint or function name, e.g. "netif_receive_skb"
	System string      // tracepoint system, e.g. "net"; "" for functions
	Group  string      // catalog group, e.g. "link"
	Probe  event.Probe // what the BPF program writes into its events (tracepoints)
	Desc   string      // what it means for a packet to pass here
	Func   bool        // a function probe, not a tracepoint
	Kind   FuncKind    // function probes: which programs watch it
}

// Group is a named set of tracers, as in nettrace's tracer tree.
type Group struct {
	Name string
	Desc string
}

// Groups lists the catalog groups in the order the tree prints them.
var Groups = []Group{
	{"link", "devices: receive and transmit"},
	{"qdisc", "traffic control queues"},
	{"ip", "routing"},
	{"icmp", "ICMP errors the kernel sends"},
	{"tcp", "TCP resets, retransmissions, bad checksums"},
	{"udp", "UDP receive failures"},
	{"netfilter", "netfilter hooks, iptables, nftables, conntrack, NAT (functions)"},
	{"bridge", "bridging (functions)"},
	{"neigh", "neighbours: ARP and ND (functions)"},
	{"sock", "socket receive queues"},
	{"life", "where the skb ends: freed after use or dropped; clones and copies"},
}

// Tracepoints is every tracepoint skbtrail knows, in path order.
var Tracepoints = []Tracer{
	{Name: "napi_gro_receive_entry", System: "net", Group: "link", Probe: event.NapiGroReceiveEntry, Desc: "a NAPI driver hands the packet to GRO"},
	{Name: "netif_rx", System: "net", Group: "link", Probe: event.NetifRx, Desc: "queued to the CPU backlog (veth, loopback, tunnels)"},
	{Name: "netif_receive_skb", System: "net", Group: "link", Probe: event.NetifReceiveSkb, Desc: "received by the network stack"},
	{Name: "net_dev_queue", System: "net", Group: "link", Probe: event.NetDevQueue, Desc: "queued for transmission on a device"},
	{Name: "net_dev_start_xmit", System: "net", Group: "link", Probe: event.NetDevStartXmit, Desc: "handed to the device driver"},
	{Name: "net_dev_xmit", System: "net", Group: "link", Probe: event.NetDevXmit, Desc: "the driver returned (rc 0: sent)"},
	{Name: "qdisc_enqueue", System: "qdisc", Group: "qdisc", Probe: event.QdiscEnqueue, Desc: "enqueued on a queueing discipline"},
	{Name: "qdisc_dequeue", System: "qdisc", Group: "qdisc", Probe: event.QdiscDequeue, Desc: "dequeued from a queueing discipline"},
	{Name: "fib_table_lookup", System: "fib", Group: "ip", Probe: event.FibTableLookup, Desc: "IPv4 route lookup (err != 0: no route)"},
	{Name: "fib6_table_lookup", System: "fib6", Group: "ip", Probe: event.Fib6TableLookup, Desc: "IPv6 route lookup (type blackhole, prohibit, unreachable or none: no way there)"},
	{Name: "icmp_send", System: "icmp", Group: "icmp", Probe: event.ICMPSend, Desc: "the kernel answers with an ICMP error"},
	{Name: "tcp_send_reset", System: "tcp", Group: "tcp", Probe: event.TCPSendReset, Desc: "TCP sends a reset"},
	{Name: "tcp_receive_reset", System: "tcp", Group: "tcp", Probe: event.TCPReceiveReset, Desc: "TCP got a reset from the peer"},
	{Name: "tcp_retransmit_skb", System: "tcp", Group: "tcp", Probe: event.TCPRetransmitSkb, Desc: "TCP retransmits a segment"},
	{Name: "tcp_bad_csum", System: "tcp", Group: "tcp", Probe: event.TCPBadCsum, Desc: "TCP segment with a bad checksum"},
	{Name: "udp_fail_queue_rcv_skb", System: "udp", Group: "udp", Probe: event.UDPFailQueueRcvSkb, Desc: "UDP could not queue a datagram to its socket"},
	{Name: "sock_rcvqueue_full", System: "sock", Group: "sock", Probe: event.SockRcvqueueFull, Desc: "socket receive buffer full"},
	{Name: "skb_copy_datagram_iovec", System: "skb", Group: "sock", Probe: event.SkbCopyDatagramIovec, Desc: "data copied to a reading process"},
	{Name: "kfree_skb", System: "skb", Group: "life", Probe: event.KfreeSkb, Desc: "dropped, with the reason and the dropping function"},
	{Name: "consume_skb", System: "skb", Group: "life", Probe: event.ConsumeSkb, Desc: "freed after normal use (delivered or sent)"},
}

// Observer is the netfilter observer probe: not a tracer a user selects,
// but --diag attaches it where the kernel allows.
var Observer = Tracer{Name: event.NFObserve.String(), System: "netfilter", Group: "netfilter",
	Probe: event.NFObserve, Desc: "passed a netfilter hook up to a priority"}

var byProbe = func() map[event.Probe]*Tracer {
	m := make(map[event.Probe]*Tracer, len(Tracepoints)+1)
	for i := range Tracepoints {
		m[Tracepoints[i].Probe] = &Tracepoints[i]
	}
	m[Observer.Probe] = &Observer
	return m
}()

// ByProbe returns the tracepoint (or the observer) that writes probe id p,
// or nil.
func ByProbe(p event.Probe) *Tracer { return byProbe[p] }

// Select resolves a -t value: a comma-separated list of group, tracepoint
// and function names, or "all". Group names are shared: a group selects
// its tracepoints and its catalog functions. An empty value selects the
// default set: every tracepoint, no function (function probes cost more,
// and some kernels refuse them). "all" selects every tracepoint, every
// catalog function and AllFunctions (every function taking an skb, found
// from BTF when the probes are opened). An unknown name is an error that
// lists what would be accepted.
func Select(list string) ([]Tracer, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return append([]Tracer(nil), Tracepoints...), nil
	}
	want := map[string]bool{}
	all := false
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := name == "all"
		all = all || found
		for _, t := range Tracepoints {
			if t.Name == name || t.Group == name || name == "all" {
				want[t.Name] = true
				found = true
			}
		}
		for _, t := range Functions {
			if t.Name == name || t.Group == name || name == "all" {
				want["fn:"+t.Name] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-t %q: no tracer, function or group %q (run 'skbtrail -t ?' to list them)", list, name)
		}
	}
	var out []Tracer
	for _, t := range Tracepoints {
		if want[t.Name] {
			out = append(out, t)
		}
	}
	for _, t := range Functions {
		if want["fn:"+t.Name] {
			out = append(out, t)
		}
	}
	if all {
		out = append(out, Tracer{Name: AllFunctions, Group: "function", Func: true, Desc: "every function taking a struct sk_buff *"})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-t %q: selects no tracer (run 'skbtrail -t ?' to list them)", list)
	}
	return out, nil
}

// GroupOf returns the tracers of group g in catalog order.
func GroupOf(g string) []Tracer {
	var out []Tracer
	for _, t := range Tracepoints {
		if t.Group == g {
			out = append(out, t)
		}
	}
	return out
}

// Names returns the sorted tracer names, for messages.
func Names() []string {
	var out []string
	for _, t := range Tracepoints {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}

// Mode is how a probe point is attached: tp_btf or raw_tp for tracepoints;
// fentry, kprobe or kprobe.multi for functions.
type Mode string

// Avail says whether a tracer can be used on this kernel, and how.
type Avail struct {
	Tracer Tracer
	Mode   Mode   // empty when unavailable
	Why    string // why it is unavailable
	Arg    int    // functions: the position of the skb argument (1-based)
}
