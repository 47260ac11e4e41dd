package catalog

import "strings"

// Function probes: the curated catalog of kernel functions that take an
// skb. Which argument is the skb is not written here: the function probe
// source reads it from the running kernel's BTF.

// FuncKind says which BPF programs watch a function.
type FuncKind uint8

// The kinds of function.
const (
	Plain FuncKind = iota // entry (and return with --ret)
	Clone                 // entry and return: the return gives a new skb to follow
	Ipt                   // entry and return: the verdict, with table and hook
)

// AllFunctions is the pseudo-tracer -t all adds: every kernel function
// that takes a struct sk_buff * (found from BTF), besides the catalog.
const AllFunctions = "*"

// fn declares a catalog function.
func fn(group, name, desc string) Tracer {
	return Tracer{Name: name, Group: group, Desc: desc, Func: true}
}

// Functions is the curated function catalog, in path order within groups
// (as in nettrace's tracer tree). Which argument is the skb is not written
// here: it is read from the running kernel's BTF (SkbArg), so functions
// that changed their signature are still handled.
var Functions = func() []Tracer {
	fs := []Tracer{
		fn("link", "napi_gro_receive", "a NAPI driver hands the packet to GRO"),
		fn("link", "__netif_rx", "queued to the CPU backlog"),
		fn("link", "netif_rx", "queued to the CPU backlog"),
		fn("link", "netif_receive_skb", "handed to the stack"),
		fn("link", "netif_receive_skb_core", "handed to the stack (core)"),
		fn("link", "__netif_receive_skb", "receive, one packet"),
		fn("link", "__netif_receive_skb_core", "receive core: taps, rx handlers, protocols"),
		fn("link", "__netif_receive_skb_one_core", "receive, one protocol"),
		fn("link", "netif_receive_skb_list_internal", "receive a list"),
		fn("link", "do_xdp_generic", "generic XDP"),
		fn("link", "dev_queue_xmit", "transmit on a device"),
		fn("link", "__dev_queue_xmit", "transmit on a device (core)"),
		fn("link", "dev_hard_start_xmit", "handed to the driver"),
		fn("link", "validate_xmit_skb", "checksum and segmentation before the driver"),
		fn("link", "dev_forward_skb", "forwarded to a peer device (veth)"),
		fn("link", "__dev_forward_skb", "forwarded to a peer device (veth), checks"),
		fn("link", "veth_xmit", "veth transmit"),
		fn("link", "skb_do_redirect", "tc/BPF redirect"),
		fn("qdisc", "sch_direct_xmit", "a qdisc hands the packet to the driver"),
		fn("qdisc", "tcf_classify", "tc classification (filters)"),
		fn("qdisc", "pfifo_fast_enqueue", "enqueued on pfifo_fast"),
		fn("qdisc", "fq_codel_enqueue", "enqueued on fq_codel"),
		fn("ip", "ip_rcv", "IPv4 receive"),
		fn("ip", "ip_rcv_core", "IPv4 header checks"),
		fn("ip", "ip_rcv_finish", "IPv4 receive after PREROUTING: route it"),
		fn("ip", "ip_route_input_noref", "IPv4 input route lookup"),
		fn("ip", "ip_local_deliver", "IPv4 delivered to this host"),
		fn("ip", "ip_local_deliver_finish", "IPv4 after INPUT: to the protocol"),
		fn("ip", "ip_forward", "IPv4 forwarded"),
		fn("ip", "ip_forward_finish", "IPv4 forwarded after FORWARD"),
		fn("ip", "ip_output", "IPv4 output"),
		fn("ip", "ip_finish_output", "IPv4 after POSTROUTING"),
		fn("ip", "__ip_finish_output", "IPv4 MTU and fragmentation"),
		fn("ip", "ip_finish_output2", "IPv4 to the neighbour layer"),
		fn("ip", "__ip_local_out", "IPv4 local out, before OUTPUT"),
		fn("ip", "ip_local_out", "IPv4 local out"),
		fn("ip", "ip_queue_xmit", "IPv4 transmit from a socket"),
		fn("ip", "__ip_queue_xmit", "IPv4 transmit from a socket (core)"),
		fn("ip", "ip_fragment", "IPv4 fragmented"),
		fn("ip", "ip_do_fragment", "IPv4 fragmented (core)"),
		fn("ip", "ip_defrag", "IPv4 reassembly"),
		fn("ip", "ip_mc_output", "IPv4 multicast output"),
		fn("ip", "ipv6_rcv", "IPv6 receive"),
		fn("ip", "ip6_rcv_core", "IPv6 header checks"),
		fn("ip", "ip6_rcv_finish", "IPv6 receive after PREROUTING"),
		fn("ip", "ip6_input", "IPv6 delivered to this host"),
		fn("ip", "ip6_input_finish", "IPv6 after INPUT"),
		fn("ip", "ip6_forward", "IPv6 forwarded"),
		fn("ip", "ip6_forward_finish", "IPv6 forwarded after FORWARD"),
		fn("ip", "ip6_output", "IPv6 output"),
		fn("ip", "ip6_finish_output", "IPv6 after POSTROUTING"),
		fn("ip", "ip6_finish_output2", "IPv6 to the neighbour layer"),
		fn("ip", "ip6_xmit", "IPv6 transmit from a socket"),
		fn("ip", "ip6_local_out", "IPv6 local out"),
		fn("netfilter", "nf_hook_slow", "netfilter hook functions run (ret < 0: dropped)"),
		fn("netfilter", "nft_do_chain", "nftables chain evaluated"),
		fn("netfilter", "ipt_do_table", "iptables (legacy) table evaluated: verdict, table, chain"),
		fn("netfilter", "ip6t_do_table", "ip6tables (legacy) table evaluated: verdict, table, chain"),
		fn("netfilter", "nf_conntrack_in", "connection tracking"),
		fn("netfilter", "nf_confirm", "connection tracking confirm"),
		fn("netfilter", "nf_nat_ipv4_fn", "IPv4 NAT"),
		fn("netfilter", "nf_nat_ipv6_fn", "IPv6 NAT"),
		fn("netfilter", "nf_nat_inet_fn", "NAT"),
		fn("netfilter", "nf_queue", "handed to a userspace queue (NFQUEUE)"),
		fn("bridge", "br_handle_frame", "a bridge port receives"),
		fn("bridge", "br_handle_frame_finish", "bridge: forward, flood or deliver"),
		fn("bridge", "br_forward", "bridge forwards to a port"),
		fn("bridge", "__br_forward", "bridge forwards to a port (core)"),
		fn("bridge", "br_forward_finish", "bridge after FORWARD"),
		fn("bridge", "br_pass_frame_up", "bridge delivers to the host"),
		fn("bridge", "br_dev_xmit", "transmit on the bridge device"),
		fn("bridge", "br_flood", "bridge floods"),
		fn("bridge", "br_nf_pre_routing", "bridge netfilter PREROUTING"),
		fn("bridge", "br_nf_forward_ip", "bridge netfilter FORWARD"),
		fn("bridge", "br_nf_post_routing", "bridge netfilter POSTROUTING"),
		fn("tcp", "tcp_v4_rcv", "TCP over IPv4 receive"),
		fn("tcp", "tcp_v4_do_rcv", "TCP over IPv4, socket found"),
		fn("tcp", "tcp_v6_rcv", "TCP over IPv6 receive"),
		fn("tcp", "tcp_v6_do_rcv", "TCP over IPv6, socket found"),
		fn("tcp", "tcp_rcv_established", "TCP segment on an established connection"),
		fn("tcp", "tcp_rcv_state_process", "TCP segment in another state (handshake, close)"),
		fn("tcp", "tcp_queue_rcv", "TCP data queued for the process"),
		fn("tcp", "tcp_data_queue", "TCP data queued"),
		fn("tcp", "tcp_ack", "TCP ACK processed"),
		fn("tcp", "tcp_add_backlog", "TCP segment to the socket backlog"),
		fn("tcp", "tcp_filter", "TCP socket filter"),
		fn("tcp", "tcp_v4_send_reset", "TCP over IPv4 answers with a reset"),
		fn("tcp", "tcp_v6_send_reset", "TCP over IPv6 answers with a reset"),
		fn("udp", "udp_rcv", "UDP over IPv4 receive"),
		fn("udp", "__udp4_lib_rcv", "UDP over IPv4 receive (core)"),
		fn("udp", "udp_unicast_rcv_skb", "UDP to one socket"),
		fn("udp", "udp_queue_rcv_skb", "UDP queued to a socket"),
		fn("udp", "udp_queue_rcv_one_skb", "UDP queued to a socket (one)"),
		fn("udp", "__udp_queue_rcv_skb", "UDP queued to a socket (core)"),
		fn("udp", "__udp_enqueue_schedule_skb", "UDP in the socket's receive queue"),
		fn("udp", "udpv6_rcv", "UDP over IPv6 receive"),
		fn("udp", "__udp6_lib_rcv", "UDP over IPv6 receive (core)"),
		fn("udp", "udp_send_skb", "UDP over IPv4 send"),
		fn("udp", "udp_v6_send_skb", "UDP over IPv6 send"),
		fn("icmp", "icmp_rcv", "ICMP receive"),
		fn("icmp", "icmp_echo", "ICMP echo request answered"),
		fn("icmp", "icmp_unreach", "ICMP destination unreachable received"),
		fn("icmp", "icmpv6_rcv", "ICMPv6 receive"),
		fn("icmp", "icmpv6_echo_reply", "ICMPv6 echo request answered"),
		fn("icmp", "ping_rcv", "ping socket receive"),
		fn("neigh", "neigh_resolve_output", "neighbour: resolve, then send"),
		fn("neigh", "neigh_connected_output", "neighbour known: send"),
		fn("neigh", "__neigh_event_send", "neighbour resolution started or queued"),
		fn("neigh", "arp_rcv", "ARP receive"),
		fn("neigh", "arp_process", "ARP processed"),
		fn("neigh", "ndisc_rcv", "neighbour discovery receive"),
		fn("sock", "sock_queue_rcv_skb_reason", "queued to a socket"),
		fn("sock", "__sock_queue_rcv_skb", "queued to a socket (core)"),
		fn("sock", "sk_filter_trim_cap", "socket filter"),
		fn("sock", "skb_copy_datagram_iter", "data copied to a process"),
		fn("life", "skb_clone", "cloned: the clone is followed too"),
		fn("life", "pskb_copy", "copied (headers): the copy is followed too"),
		fn("life", "__pskb_copy_fclone", "copied (headers): the copy is followed too"),
		fn("life", "skb_copy", "copied: the copy is followed too"),
		fn("life", "skb_copy_expand", "copied and grown: the copy is followed too"),
		fn("life", "skb_segment", "segmented (GSO)"),
		fn("life", "consume_skb", "freed after use"),
		fn("life", "kfree_skb_reason", "dropped (with a reason)"),
		fn("life", "sk_skb_reason_drop", "dropped (with a reason and a socket)"),
		fn("life", "__kfree_skb", "freed"),
		fn("life", "kfree_skb_partial", "freed (GRO merged)"),
		fn("life", "skb_release_data", "data released"),
	}
	for i := range fs {
		switch fs[i].Name {
		case "skb_clone", "pskb_copy", "__pskb_copy_fclone", "skb_copy", "skb_copy_expand":
			fs[i].Kind = Clone
		case "ipt_do_table", "ip6t_do_table":
			fs[i].Kind = Ipt
		}
	}
	return fs
}()

var funcByName = func() map[string]*Tracer {
	m := make(map[string]*Tracer, len(Functions))
	for i := range Functions {
		m[Functions[i].Name] = &Functions[i]
	}
	return m
}()

// FuncByName returns the catalog function name (or name with a compiler
// suffix such as ".constprop.0"), or nil.
func FuncByName(name string) *Tracer {
	if t := funcByName[name]; t != nil {
		return t
	}
	if base, _, ok := strings.Cut(name, "."); ok {
		return funcByName[base]
	}
	return nil
}

// FuncGroupOf returns the catalog functions of group g.
func FuncGroupOf(g string) []Tracer {
	var out []Tracer
	for _, t := range Functions {
		if t.Group == g {
			out = append(out, t)
		}
	}
	return out
}
