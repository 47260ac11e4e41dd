package probe

import (
	"fmt"
	"sort"
	"strings"
)

// A Tracer is one probe point skbtrail can attach: a kernel tracepoint, or
// (Func) a kernel function watched with a function probe (functions.go).
type Tracer struct {
	Name     string // tracepoint or function name, e.g. "netif_receive_skb"
	System   string // tracepoint system, e.g. "net"; "" for functions
	Group    string // catalog group, e.g. "link"
	ID       uint32 // probe id the BPF program writes into its events
	Desc     string // what it means for a packet to pass here
	Func     bool   // a function probe, not a tracepoint
	prog     string // BPF program name without its tp_btf_/raw_tp_ prefix
	optional bool   // not selected by default
	kind     funcKind
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

// Catalog is every tracer skbtrail knows, in path order.
var Catalog = []Tracer{
	{Name: "napi_gro_receive_entry", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NAPI_GRO_RECEIVE_ENTRY), Desc: "a NAPI driver hands the packet to GRO"},
	{Name: "netif_rx", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NETIF_RX), Desc: "queued to the CPU backlog (veth, loopback, tunnels)"},
	{Name: "netif_receive_skb", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NETIF_RECEIVE_SKB), Desc: "received by the network stack"},
	{Name: "net_dev_queue", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NET_DEV_QUEUE), Desc: "queued for transmission on a device"},
	{Name: "net_dev_start_xmit", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NET_DEV_START_XMIT), Desc: "handed to the device driver"},
	{Name: "net_dev_xmit", System: "net", Group: "link", ID: uint32(tracepointProbeIdPROBE_NET_DEV_XMIT), Desc: "the driver returned (rc 0: sent)"},
	{Name: "qdisc_enqueue", System: "qdisc", Group: "qdisc", ID: uint32(tracepointProbeIdPROBE_QDISC_ENQUEUE), Desc: "enqueued on a queueing discipline"},
	{Name: "qdisc_dequeue", System: "qdisc", Group: "qdisc", ID: uint32(tracepointProbeIdPROBE_QDISC_DEQUEUE), Desc: "dequeued from a queueing discipline"},
	{Name: "fib_table_lookup", System: "fib", Group: "ip", ID: uint32(tracepointProbeIdPROBE_FIB_TABLE_LOOKUP), Desc: "IPv4 route lookup (err != 0: no route)"},
	{Name: "icmp_send", System: "icmp", Group: "icmp", ID: uint32(tracepointProbeIdPROBE_ICMP_SEND), Desc: "the kernel answers with an ICMP error"},
	{Name: "tcp_send_reset", System: "tcp", Group: "tcp", ID: uint32(tracepointProbeIdPROBE_TCP_SEND_RESET), Desc: "TCP sends a reset"},
	{Name: "tcp_receive_reset", System: "tcp", Group: "tcp", ID: uint32(tracepointProbeIdPROBE_TCP_RECEIVE_RESET), Desc: "TCP got a reset from the peer"},
	{Name: "tcp_retransmit_skb", System: "tcp", Group: "tcp", ID: uint32(tracepointProbeIdPROBE_TCP_RETRANSMIT_SKB), Desc: "TCP retransmits a segment"},
	{Name: "tcp_bad_csum", System: "tcp", Group: "tcp", ID: uint32(tracepointProbeIdPROBE_TCP_BAD_CSUM), Desc: "TCP segment with a bad checksum"},
	{Name: "udp_fail_queue_rcv_skb", System: "udp", Group: "udp", ID: uint32(tracepointProbeIdPROBE_UDP_FAIL_QUEUE_RCV_SKB), Desc: "UDP could not queue a datagram to its socket"},
	{Name: "sock_rcvqueue_full", System: "sock", Group: "sock", ID: uint32(tracepointProbeIdPROBE_SOCK_RCVQUEUE_FULL), Desc: "socket receive buffer full"},
	{Name: "skb_copy_datagram_iovec", System: "skb", Group: "sock", ID: uint32(tracepointProbeIdPROBE_SKB_COPY_DATAGRAM_IOVEC), Desc: "data copied to a reading process"},
	{Name: "kfree_skb", System: "skb", Group: "life", ID: uint32(tracepointProbeIdPROBE_KFREE_SKB), Desc: "dropped, with the reason and the dropping function"},
	{Name: "consume_skb", System: "skb", Group: "life", ID: uint32(tracepointProbeIdPROBE_CONSUME_SKB), Desc: "freed after normal use (delivered or sent)"},
}

// observer is the netfilter observer probe (netfilter.go): not a tracer a
// user selects, but --diag attaches it where the kernel allows.
var observer = Tracer{Name: NFObserve, System: "netfilter", Group: "netfilter",
	ID: uint32(tracepointProbeIdPROBE_NF_OBSERVE), Desc: "passed a netfilter hook up to a priority"}

var byID = func() map[uint32]*Tracer {
	m := make(map[uint32]*Tracer, len(Catalog)+1)
	for i := range Catalog {
		Catalog[i].prog = Catalog[i].Name
		m[Catalog[i].ID] = &Catalog[i]
	}
	m[observer.ID] = &observer
	for i := range funcProbes {
		m[funcProbes[i].ID] = &funcProbes[i]
	}
	return m
}()

// ByID returns the tracer that writes probe id id, or nil.
func ByID(id uint32) *Tracer { return byID[id] }

// Names of tracers other packages treat specially: the drop and free
// tracers end a packet's story; route lookups have no skb.
const (
	KfreeSkb       = "kfree_skb"
	ConsumeSkb     = "consume_skb"
	FibTableLookup = "fib_table_lookup"
)

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
		var out []Tracer
		for _, t := range Catalog {
			if !t.optional {
				out = append(out, t)
			}
		}
		return out, nil
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
		for _, t := range Catalog {
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
	for _, t := range Catalog {
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
	for _, t := range Catalog {
		if t.Group == g {
			out = append(out, t)
		}
	}
	return out
}

// Names returns the sorted tracer names, for messages.
func Names() []string {
	var out []string
	for _, t := range Catalog {
		out = append(out, t.Name)
	}
	sort.Strings(out)
	return out
}
