package counters

import "path"

// rule says that the counters whose names match pattern matter for explaining
// lost, rejected or damaged packets, and what it means when one moves.
type rule struct {
	// pattern is a counter name, or a path.Match pattern for several:
	// "Udp* NoPorts" covers Udp, Udp6, UdpLite and UdpLite6; "dev * rx_dropped"
	// every device.
	pattern string
	// explanation says in a few words, for someone without kernel knowledge,
	// what a counter that moved means.
	explanation string
}

// rules is what matters, most specific first: a counter takes the explanation
// of the first rule it matches. The catch-all patterns at the end flag
// counters no specific rule names, such as the many TcpExt drops.
var rules = []rule{
	// Routing and forwarding.
	{"Ip* InNoRoutes", "packets received with no route to their destination"},
	{"Ip* OutNoRoutes", "packets not sent: no route to the destination"},
	{"Ip* InAddrErrors", "packets dropped: destination address not valid here (not local, and not forwarded: is forwarding off?)"},
	{"Ip* InHdrErrors", "packets dropped: bad IP header, or TTL/hop limit ran out while forwarding"},
	{"Ip ForwDatagrams", "IPv4 packets routed for forwarding (counted before the FORWARD hook, so also ones a firewall then drops)"},
	{"Ip6 OutForwDatagrams", "IPv6 packets forwarded"},
	{"Ip6 InTooBigErrors", "IPv6 packets too big for the next link's MTU (Packet Too Big sent)"},
	{"Ip* FragFails", "packets dropped: bigger than the MTU and not allowed to fragment"},
	{"Ip* ReasmFails", "fragmented packets that could not be reassembled"},
	{"Ip* InTruncatedPkts", "packets dropped: shorter than their IP header says"},
	{"Ip* InUnknownProtos", "packets for an IP protocol nothing here handles"},
	{"Ip* InDiscards", "packets discarded on receive although nothing was wrong with them (e.g. out of memory)"},
	{"Ip* OutDiscards", "packets discarded on send (e.g. out of memory, or the neighbour or device refused them)"},
	{"TcpExt IPReversePathFilter", "packets dropped by reverse path filtering (rp_filter): they came in on an interface the route back does not use"},

	// ICMP errors, which the kernel sends for many drops.
	{"Icmp* OutDestUnreachs", "ICMP destination unreachable sent (port, host or network unreachable, or fragmentation needed)"},
	{"Icmp* InDestUnreachs", "ICMP destination unreachable received"},
	{"Icmp* OutTimeExcds", "ICMP time exceeded sent: a packet's TTL/hop limit ran out here"},
	{"Icmp6 OutPktTooBigs", "ICMPv6 packet too big sent: a packet did not fit the next link's MTU"},
	{"Icmp* OutRateLimit*", "ICMP errors not sent: rate limited (net.ipv4.icmp_ratelimit, icmp_msgs_per_sec)"},

	// UDP (the same names for Udp, Udp6, UdpLite and UdpLite6).
	{"Udp* NoPorts", "UDP datagrams to a port with no socket (answered with ICMP port unreachable)"},
	{"Udp* RcvbufErrors", "UDP datagrams dropped: socket receive buffer full (the application reads too slowly; raise SO_RCVBUF or net.core.rmem_max)"},
	{"Udp* SndbufErrors", "UDP datagrams not sent: socket send buffer full"},
	{"Udp* MemErrors", "UDP datagrams dropped: UDP memory limit reached (net.ipv4.udp_mem)"},
	{"Udp* InErrors", "UDP datagrams dropped on receive (buffer full, bad checksum or malformed)"},

	// TCP.
	{"Tcp OutRsts", "TCP resets sent (e.g. a connection to a port with no listener)"},
	{"Tcp EstabResets", "TCP connections reset while established or closing"},
	{"Tcp AttemptFails", "TCP connection attempts that failed (refused, reset or timed out)"},
	{"Tcp RetransSegs", "TCP segments retransmitted: packets were lost or not acknowledged in time"},
	{"Tcp InErrs", "TCP segments dropped on receive (bad checksum or malformed)"},
	{"TcpExt TCPSynRetrans", "TCP SYNs retransmitted: a connection attempt got no answer"},
	{"TcpExt TCPTimeouts", "TCP retransmission timeouts: no acknowledgement in time"},
	{"TcpExt ListenOverflows", "TCP connections dropped: a listening socket's accept queue was full (the application accepts too slowly)"},
	{"TcpExt ListenDrops", "TCP SYNs or handshakes dropped at a listening socket"},
	{"TcpExt TCPReqQFullDrop", "TCP SYNs dropped: SYN queue full and SYN cookies off"},
	{"TcpExt TCPReqQFullDoCookies", "TCP SYN queue full: answered with SYN cookies"},
	{"TcpExt TCPBacklogDrop", "TCP segments dropped: socket backlog full while the application held the socket"},
	{"TcpExt TCPRcvQDrop", "TCP segments dropped: no memory for the socket's receive queue"},
	{"TcpExt TCPZeroWindowDrop", "TCP segments dropped: the receive window was zero"},
	{"TcpExt TCPOFODrop", "out-of-order TCP segments dropped: receive buffer full"},
	{"TcpExt PruneCalled", "TCP receive queues were pruned: socket memory pressure"},
	{"TcpExt *Pruned", "TCP data dropped from receive queues under memory pressure"},
	{"TcpExt TCPAbortOn*", "TCP connections aborted with a reset (data unread on close, timeout, or out of memory)"},
	{"TcpExt TCPMemoryPressures", "TCP entered memory pressure (net.ipv4.tcp_mem)"},

	// Devices and the receive path.
	{"dev * rx_dropped", "packets dropped on receive by the device or the stack (no handler for the protocol, or a full queue)"},
	{"dev * tx_dropped", "packets dropped on transmit (the qdisc or driver refused them, or a veth's peer was down)"},
	{"dev * rx_errors", "receive errors reported by the device (bad frames, CRC, overruns)"},
	{"dev * tx_errors", "transmit errors reported by the device"},
	{"dev * *_errors", "device errors (see the counter's name)"},
	{"softnet dropped", "packets dropped: a CPU's input backlog was full (net.core.netdev_max_backlog)"},
	{"softnet flow_limit_count", "packets dropped by the receive flow limit (net.core.flow_limit_cpu_bitmap)"},
	{"softnet time_squeeze", "receive processing ran out of budget with packets waiting (net.core.netdev_budget)"},

	// Connection tracking and neighbours.
	{"conntrack drop", "packets dropped: conntrack table full (raise net.netfilter.nf_conntrack_max)"},
	{"conntrack early_drop", "conntrack evicted connections to make room: table nearly full"},
	{"conntrack insert_failed", "packets dropped: their conntrack entry could not be inserted (a race, often with NAT)"},
	{"conntrack invalid", "packets conntrack could not track (ct state invalid): rules matching invalid drop them"},
	{"* unresolved_discards", "packets dropped waiting for an ARP/ND answer: the queue for an unresolved neighbour was full"},
	{"* res_failed", "ARP/ND resolution failed: the next hop or destination did not answer"},
	{"* table_fulls", "neighbour table full: entries could not be added (net.ipv4.neigh.default.gc_thresh3)"},

	// Catch-alls for the counters above do not name.
	{"* *CsumErrors", "packets dropped: bad checksum"},
	{"* *Drop*", "packets dropped (the counter's name says where)"},
	{"* *Overflow*", "a queue or table overflowed"},
	{"* *Retrans*", "retransmissions: packets were lost on the way"},
	{"* *Err*", "errors (the counter's name says which)"},
	{"* *Fail*", "failures (the counter's name says which)"},
}

// Explain says what it means when counter name moves, in words for the person
// reading a diagnosis: Explain("Udp NoPorts") is "UDP datagrams to a port with
// no socket (answered with ICMP port unreachable)". It returns "" for a
// counter that does not matter for explaining lost or damaged packets, such
// as "Tcp InSegs".
func Explain(name string) string {
	for _, r := range rules {
		if ok, _ := path.Match(r.pattern, name); ok {
			return r.explanation
		}
	}
	return ""
}

// Notable keeps the changes that help explain lost, rejected or damaged
// packets: those with an [Explain] text that went up. (A drop counter going
// down means a reset, such as a device created again, not a drop.) The order
// of changes is kept.
func Notable(changes []Change) []Change {
	var out []Change
	for _, c := range changes {
		if c.Delta > 0 && Explain(c.Name) != "" {
			out = append(out, c)
		}
	}
	return out
}
