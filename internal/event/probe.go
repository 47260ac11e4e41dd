package event

import "fmt"

// Probe identifies what wrote a record: one id per tracepoint, the netfilter
// observer, and the three kinds of function-probe records (enum probe_id in
// bpf/skbtrail.h and enum func_probe_id in bpf/function.c). The values are
// the BPF side's; the probe packages' tests check that they agree.
type Probe uint32

// Tracepoint probes, in the order of bpf/skbtrail.h. Append only.
const (
	NetifReceiveSkb Probe = iota + 1
	NetDevQueue
	NetDevStartXmit
	NetDevXmit
	NetifRx
	NapiGroReceiveEntry
	KfreeSkb
	ConsumeSkb
	SkbCopyDatagramIovec
	QdiscEnqueue
	QdiscDequeue
	ICMPSend
	FibTableLookup
	TCPSendReset
	TCPReceiveReset
	TCPRetransmitSkb
	TCPBadCsum
	SockRcvqueueFull
	UDPFailQueueRcvSkb
	NFObserve // the netfilter observer (internal/probe/netfilter)
	// Tracepoints added later go here, in the order of bpf/skbtrail.h.
	Fib6TableLookup
	probeMax
)

// Function probe records (bpf/function.c): their function is named by the
// record's Location, not by the id.
const (
	FuncEntry  Probe = 64 + iota // a function was entered
	FuncReturn                   // it returned (with --ret, or to learn a result)
	FuncClone                    // it made a clone or copy of a followed skb
)

var probeNames = [probeMax]string{
	NetifReceiveSkb:      "netif_receive_skb",
	NetDevQueue:          "net_dev_queue",
	NetDevStartXmit:      "net_dev_start_xmit",
	NetDevXmit:           "net_dev_xmit",
	NetifRx:              "netif_rx",
	NapiGroReceiveEntry:  "napi_gro_receive_entry",
	KfreeSkb:             "kfree_skb",
	ConsumeSkb:           "consume_skb",
	SkbCopyDatagramIovec: "skb_copy_datagram_iovec",
	QdiscEnqueue:         "qdisc_enqueue",
	QdiscDequeue:         "qdisc_dequeue",
	ICMPSend:             "icmp_send",
	FibTableLookup:       "fib_table_lookup",
	TCPSendReset:         "tcp_send_reset",
	TCPReceiveReset:      "tcp_receive_reset",
	TCPRetransmitSkb:     "tcp_retransmit_skb",
	TCPBadCsum:           "tcp_bad_csum",
	SockRcvqueueFull:     "sock_rcvqueue_full",
	UDPFailQueueRcvSkb:   "udp_fail_queue_rcv_skb",
	NFObserve:            "nf_observe",
	Fib6TableLookup:      "fib6_table_lookup",
}

// String is the probe's name: the tracepoint's ("kfree_skb"), "nf_observe",
// or "function" for function-probe records (an event names its function).
func (p Probe) String() string {
	if p < probeMax && probeNames[p] != "" {
		return probeNames[p]
	}
	switch p {
	case FuncEntry, FuncReturn, FuncClone:
		return "function"
	}
	return fmt.Sprintf("probe%d", uint32(p))
}

// Func reports whether p is a function-probe record.
func (p Probe) Func() bool { return p >= FuncEntry && p <= FuncClone }

// Tracepoints lists every tracepoint probe id, in id order (all ids
// below probeMax but NFObserve: tracepoints added later come after it).
func Tracepoints() []Probe {
	out := make([]Probe, 0, probeMax)
	for p := NetifReceiveSkb; p < probeMax; p++ {
		if p != NFObserve {
			out = append(out, p)
		}
	}
	return out
}

// ProbeNamed returns the tracepoint probe (or NFObserve) with the given
// name, and whether there is one.
func ProbeNamed(name string) (Probe, bool) {
	for p, n := range probeNames {
		if n == name && n != "" {
			return Probe(p), true
		}
	}
	return 0, false
}
