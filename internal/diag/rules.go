package diag

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/path"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Advice texts may name the packet and where it was with these
// placeholders: {saddr} {daddr} {sport} {dport} {proto} {dev} {netns}
// {location}.
func fill(tmpl string, e event.Event, ctx Context) string {
	p := e.Packet
	dev := Shell(e.Ifname) // it may be in a command
	if e.Ifname == "" {
		dev = "the interface"
	}
	r := strings.NewReplacer(
		"{saddr}", addrOr(p.Src, "the source"),
		"{daddr}", addrOr(p.Dst, "the destination"),
		"{sport}", fmt.Sprint(p.Sport),
		"{dport}", fmt.Sprint(p.Dport),
		"{proto}", orWord(event.ProtoName(p.Proto), "ip"),
		"{dev}", dev,
		"{netns}", ctx.ns(e.Netns),
		"{location}", orWord(e.Location, "the dropping function"),
	)
	return r.Replace(tmpl)
}

func addrOr(a interface {
	IsValid() bool
	String() string
}, s string) string {
	if a.IsValid() {
		return a.String()
	}
	return s
}

func orWord(s, w string) string {
	if s == "" {
		return w
	}
	return s
}

// dropRule explains one kernel drop reason.
type dropRule struct {
	Reason  string // the kernel's name; a trailing * matches a prefix
	Message string
	Advice  string // may use the placeholders of fill
}

// dropRules explain the drop reasons that matter most; any other reason of
// the running kernel still gets a finding (see dropFinding).
var dropRules = []dropRule{
	{"NETFILTER_DROP", "a netfilter rule (nftables or iptables) took it",
		"find the rule in netns {netns}: `nft -a list ruleset`, `iptables-save -c`; the rule trace (if shown) names it"},
	{"NO_SOCKET", "no socket for it: nothing listens on {proto} port {dport} at {daddr}",
		"start the server, or bind it to {daddr}:{dport} (check with `ss -lntup` in netns {netns}); a client may be using the wrong port or address"},
	{"SOCKET_FILTER", "a socket filter (SO_ATTACH_FILTER / BPF) refused it",
		"check the BPF filter the application (or a sniffer) attached to its socket"},
	{"SOCKET_RCVBUFF", "the socket's receive buffer was full",
		"the application reads too slowly: read faster, raise SO_RCVBUF, or net.core.rmem_max / net.core.rmem_default"},
	{"SOCKET_BACKLOG", "the socket's backlog was full", "the application is too slow to keep up; raise its buffers"},
	{"PROTO_MEM", "the protocol's memory limit was reached", "raise net.ipv4.tcp_mem / udp_mem, or find what holds that memory"},
	{"PKT_TOO_SMALL", "shorter than its headers say (truncated or malformed)",
		"check the sender and anything that rewrites packets on the way (tunnels, MTU, offloads)"},
	{"PKT_TOO_BIG", "larger than the MTU and not allowed to be fragmented",
		"lower the MTU of the sender or path, and let ICMP 'fragmentation needed' / 'packet too big' through firewalls (PMTU discovery)"},
	{"TCP_CSUM", "bad TCP checksum", csumAdvice},
	{"UDP_CSUM", "bad UDP checksum", csumAdvice},
	{"ICMP_CSUM", "bad ICMP checksum", csumAdvice},
	{"IP_CSUM", "bad IPv4 header checksum", csumAdvice},
	{"IP_INHDR", "invalid IPv4 header (version, length, checksum)",
		"check the sender and any device that rewrites packets; `nstat -az IpInHdrErrors`"},
	{"IP_NOROUTE", "no route for it",
		"add a route to {daddr} in netns {netns} (`ip route get {daddr}` shows the lookup); on a router also check net.ipv4.ip_forward"},
	{"IP_OUTNOROUTES", "no route for an outgoing packet to {daddr}",
		"add a route (`ip route add {daddr} via GATEWAY`) or a default route in netns {netns}"},
	{"IP_INNOROUTES", "no route for it (InNoRoutes)", "add a route to {daddr} in netns {netns}"},
	{"IP_INADDRERRORS", "its destination {daddr} is invalid or unreachable here (InAddrErrors)",
		"check the route to {daddr} in netns {netns} (`ip route get {daddr} from {saddr} iif {dev}`); a namespace that does not forward counts here the packets not for it (see the forwarding finding, if any)"},
	{"IP_RPFILTER", "reverse path filter: {saddr} is not reachable back through {dev}",
		"fix the route back to {saddr} so it leaves through {dev}, or set net.ipv4.conf.{dev}.rp_filter=2 (loose) or 0 in netns {netns}"},
	{"IP_LOCAL_SOURCE", "its source address {saddr} is one of this host's own", "a loop or a spoofed packet: check who sends it"},
	{"IP_INVALID_SOURCE", "invalid source address {saddr}", "check the sender's address and NAT"},
	{"IP_LOCALNET", "a local-network (127/8) address arrived on {dev}", "route_localnet is off: do not send 127.x over a real interface"},
	{"IP_INVALID_DEST", "invalid destination address {daddr}", "check the sender's routing and NAT"},
	{"OTHERHOST", "addressed to another host's MAC address",
		"the sender's ARP/ND entry for {daddr} is wrong or stale: check `ip neigh` on the sender; a bridge may flood frames"},
	{"UNICAST_IN_L2_MULTICAST", "a unicast IP packet in a multicast/broadcast frame", "check the sender's neighbour entry"},
	{"NEIGH_FAILED", "neighbour resolution (ARP/ND) failed for the next hop",
		"the next hop does not answer ARP/ND on {dev}: check it is up, on that link, and in the same subnet"},
	{"NEIGH_QUEUEFULL", "too many packets were waiting for neighbour resolution",
		"the next hop does not answer ARP/ND on {dev}; check it, or raise the neighbour queue (unres_qlen_bytes)"},
	{"NEIGH_NOENTRY", "no neighbour entry could be made", "check the neighbour table limits (gc_thresh) and the next hop"},
	{"NEIGH_DEAD", "the neighbour entry was being removed", "transient; if it persists, check the link to the next hop"},
	{"NEIGH_CREATEFAIL", "no neighbour entry could be created for the next hop",
		"the neighbour table may be full: compare `ip neigh show | wc -l` with net.ipv4.neigh.default.gc_thresh3 in netns {netns}"},
	{"NEIGH_HH_FILLFAIL", "the link-layer header for the next hop could not be built",
		"check the device {dev} and its neighbour entry (`ip neigh show dev {dev}`) in netns {netns}"},
	{"IPV6_BAD_EXTHDR", "an IPv6 extension header was malformed or not allowed",
		"check the sender: the packet's extension headers are invalid (or exceed net.ipv6.max_hbh_opts_number and related limits)"},
	{"IP_TUNNEL_ECN", "the tunnel's inner and outer ECN bits conflict (RFC 6040)",
		"check the tunnel endpoints' ECN marking, or the device's ECN handling"},
	{"DUALPI2_STEP_DROP", "dropped by the dualpi2 qdisc (step threshold)",
		"the queue is congested: check `tc -s qdisc show dev {dev}` in netns {netns}"},
	{"PSP_*", "rejected by PSP encryption (missing or invalid PSP protection)",
		"check the PSP configuration of the device and the socket's PSP association"},
	{"QDISC_DROP", "dropped by the queueing discipline (queue full or policy)",
		"check `tc -s qdisc show dev {dev}` in netns {netns}: raise the limit or reduce the rate"},
	{"QDISC_*", "dropped by the queueing discipline", "check `tc -s qdisc show dev {dev}` in netns {netns}"},
	{"TC_INGRESS", "dropped by a tc filter or BPF program on ingress of {dev}",
		"check `tc filter show dev {dev} ingress` in netns {netns}"},
	{"TC_EGRESS", "dropped by a tc filter or BPF program on egress of {dev}",
		"check `tc filter show dev {dev} egress` in netns {netns}"},
	{"TC_*", "dropped by traffic control on {dev}", "check `tc filter show dev {dev} ingress/egress` in netns {netns}"},
	{"CPU_BACKLOG", "the CPU's backlog queue was full", "raise net.core.netdev_max_backlog, or spread load (RPS)"},
	{"DEV_READY", "the device {dev} is not up or not ready", "bring it up: `ip link set {dev} up` in netns {netns}"},
	{"DEV_HDR", "invalid link-layer header", "check the device or driver that delivered it"},
	{"FULL_RING", "the device's transmit ring was full", "the link is saturated; raise the ring size (ethtool -G) or reduce the rate"},
	{"NOMEM", "out of memory while handling it", "the host is under memory pressure"},
	{"XFRM_POLICY", "an IPsec (xfrm) policy refused it", "check `ip xfrm policy` in netns {netns}"},
	{"IPV6DISABLED", "IPv6 is disabled on {dev}", "enable it: `sysctl -w net.ipv6.conf.{dev}.disable_ipv6=0` in netns {netns}"},
	{"IPV6_NDISC_*", "an invalid neighbour discovery message", "check the sender"},
	{"IP6_FRAG_*", "an IPv6 fragment could not be reassembled", "check the path for lost or reordered fragments, and the MTU"},
	{"FRAG_*", "a fragment could not be reassembled", "check the path for lost fragments and the MTU; avoid fragmentation (PMTU)"},
	{"DUP_FRAG", "a duplicate fragment", "check the path for duplication"},
	{"TCP_LISTEN_OVERFLOW", "the listening socket's accept queue was full",
		"the server accepts connections too slowly: raise its listen() backlog and net.core.somaxconn, or accept faster"},
	{"TCP_INVALID_SYN", "a SYN on a connection in a state that does not accept one", "a stale or spoofed connection; check both ends"},
	{"TCP_ZEROWINDOW", "the receiver's window was zero", "the receiving application reads too slowly"},
	{"TCP_OLD_DATA", "data already received (a retransmission)", "duplicate segments: the ACKs may be lost on the way back"},
	{"TCP_OVERWINDOW", "data beyond the receive window", "check for middleboxes that rewrite TCP windows or sequence numbers"},
	{"TCP_RFC7323_PAWS", "rejected by PAWS (old timestamp)", "a reused connection or NAT mixing peers; check tcp_timestamps on both ends"},
	{"TCP_*", "the TCP state machine rejected the segment", "check both ends of the connection; the reason names the case"},
	{"BPF_CGROUP_EGRESS", "a cgroup BPF program refused it on egress", "check the cgroup's BPF programs (`bpftool cgroup tree`)"},
	{"SKB_UCOPY_FAULT", "copying it to the application failed", "the application passed a bad buffer"},
	{"SOCKET_CLOSE", "its socket was closing", "the application closed the socket while data was arriving"},
	{"IP_NOPROTO", "no handler for its IP protocol {proto}", "nothing in this kernel handles that protocol: load its module or check the sender"},
	{"INVALID_PROTO", "an invalid protocol", "check the sender"},
	{"UNHANDLED_PROTO", "a protocol this host does not handle", "check the sender, or load the module for it"},
	{"HDR_TRUNC", "its headers are truncated", "check the sender and the path (MTU, tunnels)"},
	{"SECURITY_HOOK", "a security module (SELinux, AppArmor, ...) refused it", "check the LSM's audit log (`ausearch`, `dmesg`)"},
	{"XDP", "an XDP program on {dev} dropped it", "check the XDP program attached to {dev} (`ip link show dev {dev}`, `bpftool net`) in netns {netns}"},
	{"FQ_*", "dropped by the fq qdisc (flow or band limit)", "check `tc -s qdisc show dev {dev}`: raise its flow_limit or limit"},
	{"CAKE_FLOOD", "dropped by the cake qdisc (flood protection)", "check `tc -s qdisc show dev {dev}`"},
	{"BRIDGE_INGRESS_STP_STATE", "the bridge port {dev} is not forwarding (STP state)", "check `bridge link show` for the port's state"},
	{"VXLAN_*", "dropped by VXLAN", "check the VXLAN device's VNI, remote and FDB entries (`bridge fdb show`)"},
	{"TUNNEL_TXINFO", "no tunnel metadata to send it with", "the tunnel device in external mode got a packet without a destination"},
	{"NO_TX_TARGET", "no device to send it to", "check the routes and the device configuration"},
	{"LOCAL_MAC", "its source MAC address is this host's own", "a loop in the layer 2 network: check bridges and switches"},
	{"MAC_INVALID_SOURCE", "invalid source MAC address", "check the sender"},
	{"RECURSION_LIMIT", "the transmit recursion limit was hit", "a loop of tunnels or devices sending to each other: check the tunnel routes"},
	{"SKB_CSUM", "bad checksum", csumAdvice},
	{"SKB_GSO_SEG", "GSO segmentation failed", "check offloads (`ethtool -k`)"},
	{"TAP_*", "a filter on a tap device refused it", "check the tap device's filter"},
	{"QUEUE_PURGE", "its queue was purged", "a device or socket was torn down while the packet waited"},
	{"PFMEMALLOC", "dropped under memory pressure (pfmemalloc)", "the host is short of memory"},
	{"NOT_SPECIFIED", "dropped without a specific reason in {location}", "the function named tells where: look at what it checks"},
}

const csumAdvice = "corrupted on the way or a checksum offload bug: check `ethtool -k` tx/rx-checksumming on both ends and anything in between"

// lookupDrop returns the rule for a reason: an exact row first, then the
// longest matching prefix row.
func lookupDrop(reason string) (dropRule, bool) {
	var best dropRule
	found := false
	for _, r := range dropRules {
		if r.Reason == reason {
			return r, true
		}
		if p, ok := strings.CutSuffix(r.Reason, "*"); ok && strings.HasPrefix(reason, p) &&
			(!found || len(p) > len(best.Reason)-1) {
			best, found = r, true
		}
	}
	return best, found
}

// dropCode is the finding code of a drop reason: a named cause where the
// reason is one, else drop.<REASON>.
func dropCode(reason string) string {
	switch reason {
	case "NETFILTER_DROP":
		return "nf.rule_drop"
	case "NO_SOCKET":
		return "socket.none"
	case "SOCKET_RCVBUFF":
		return "socket.rcvbuf_full"
	case "NEIGH_FAILED":
		return "neigh.failed"
	case "IP_RPFILTER":
		return "rp_filter"
	case "TC_INGRESS", "TC_EGRESS":
		return "tc.drop"
	case "IP_NOROUTE", "IP_INNOROUTES", "IP_OUTNOROUTES":
		return "route.none"
	case "":
		return "drop"
	}
	return "drop." + reason
}

func dropFinding(e event.Event, ctx Context) Finding {
	f := Finding{Level: Error, Code: dropCode(e.Reason), Reason: e.Reason, Location: e.Location}
	r, ok := lookupDrop(e.Reason)
	switch {
	case (e.Reason == "NOT_SPECIFIED" || e.Reason == "") && (strings.HasPrefix(e.Location, "ip_error+") || strings.HasPrefix(e.Location, "dst_discard")):
		f.Code = "route.refused"
		f.Message = fmt.Sprintf("packet dropped at the routing decision (%s): the route lookup for %s refused it", e.Location, addrOr(e.Packet.Dst, "its destination"))
		f.Advice = fill("look at the route and the policy rules for it in netns {netns}: `ip route get {daddr} from {saddr} iif {dev}`, `ip rule show`", e, ctx)
	case ok:
		f.Message = "packet dropped: " + fill(r.Message, e, ctx)
		f.Advice = fill(r.Advice, e, ctx)
	case e.Reason == "":
		f.Message = fmt.Sprintf("packet dropped in %s (this kernel gives no drop reasons)", orWord(e.Location, "an unknown function"))
		f.Advice = "the function named tells where: look at what it checks"
	default:
		f.Message = fmt.Sprintf("packet dropped: the kernel's reason is %s", e.Reason)
		f.Advice = fmt.Sprintf("%s is described in the kernel's include/net/dropreason-core.h; %s is where it happened",
			e.Reason, orWord(e.Location, "the location"))
	}
	return f
}

// icmpRule explains an ICMP error the kernel sends.
func icmpFinding(e event.Event, ctx Context) Finding {
	typ, code := uint32(e.Facts.ICMP.Type), uint32(e.Facts.ICMP.Code)
	f := Finding{Level: Warn, Code: "icmp.sent"}
	what := e.Facts.ICMP.Name(e.Packet.Family)
	f.Message = fmt.Sprintf("the kernel answers with ICMP %s (type %d code %d)", what, typ, code)
	switch {
	case typ == 3 && code == 3:
		f.Advice = fill("nothing listens on {proto} port {dport} at {daddr} in netns {netns}: start the service or fix the port", e, ctx)
	case typ == 3 && (code == 0 || code == 1 || code == 6 || code == 7):
		f.Level = Error
		f.Advice = fill("no route to {daddr} or its next hop does not answer: check `ip route get {daddr}` and `ip neigh` in netns {netns}", e, ctx)
	case typ == 3 && code == 4:
		f.Advice = "the packet is larger than the path MTU and has DF set: lower the MTU or let PMTU discovery work (do not block ICMP)"
	case typ == 3 && (code == 9 || code == 10 || code == 13):
		// A firewall's reject rule, or a prohibit route or policy rule:
		// prohibitRule says which, from the rest of the story.
		f.Level = Error
		f.Advice = fill("a reject rule of a firewall, or a prohibit route or policy rule, refuses it in netns {netns}: check `ip rule`, `ip route get {daddr}` and the reject rules (`nft -a list ruleset`, `iptables-save`)", e, ctx)
	case typ == 11:
		f.Advice = "the TTL ran out: a routing loop or too many hops; check the routes along the path (`ip route get`)"
	}
	return f
}

// fibErrors names the route lookup errors that mean "no way there", with
// their finding codes; other errors (-EAGAIN: try the next routing rule)
// are part of normal lookups.
var fibErrors = map[int32]struct{ code, what, advice string }{
	-101: {"route.none", "no route (network unreachable)",
		"add a route: `ip route add {daddr} via GATEWAY` (or a default route) in netns {netns}; `ip route get {daddr}` shows the lookup"},
	-113: {"route.unreachable", "an unreachable route (host unreachable)",
		"an `unreachable` route covers {daddr}: find it with `ip route show table all type unreachable` in netns {netns}, and delete it if the packet should pass"},
	-13: {"route.prohibit", "a prohibit route",
		"a `prohibit` route covers {daddr}: find it with `ip route show table all type prohibit` in netns {netns}, and delete it if the packet should pass"},
	-22: {"route.blackhole", "a blackhole route",
		"a `blackhole` route covers {daddr}: find it with `ip route show table all type blackhole` in netns {netns}, and delete it if the packet should pass"},
}

// fibFinding explains a route lookup (IPv4 or IPv6) that found no way.
func fibFinding(e event.Event, ctx Context) Finding {
	fe := fibErrors[e.Facts.Route.Err]
	return Finding{Level: Error, Code: fe.code,
		Message: fmt.Sprintf("route lookup for %s in table %d failed: %s", addrOr(e.Packet.Dst, "the destination"), e.Facts.Route.Table, fe.what),
		Advice:  fill(fe.advice, e, ctx)}
}

// eventRules fire on single events. One row per rule.
var eventRules = []EventRule{
	{Probe: event.KfreeSkb, Find: dropFinding},
	{Probe: event.ICMPSend, Find: icmpFinding},
	{Code: "tcp.reset", Probe: event.TCPSendReset, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Warn, Message: "TCP answers with a reset",
			Advice: fill("if this answers a SYN, nothing listens on port {dport} at {daddr} in netns {netns}; otherwise the connection is unknown or was closed", e, ctx)}
	}},
	{Code: "tcp.peer_reset", Probe: event.TCPReceiveReset, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Warn, Message: fill("the peer {saddr} reset the connection", e, ctx),
			Advice: "the peer refused or aborted it: check that its service runs and accepts this client"}
	}},
	{Code: "tcp.retransmit", Probe: event.TCPRetransmitSkb, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Warn, Message: "TCP retransmits: the segment or its ACK was lost",
			Advice: fill("look for drops on the way to {daddr} and back (run skbtrail on the peer too)", e, ctx)}
	}},
	{Code: "tcp.bad_csum", Probe: event.TCPBadCsum, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Error, Message: "TCP segment with a bad checksum", Advice: csumAdvice}
	}},
	{Code: "socket.rcvbuf_full", Probe: event.SockRcvqueueFull, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Error,
			Message: fmt.Sprintf("socket receive buffer full (%d bytes queued, limit %d)", e.Facts.Buf.Rmem, e.Facts.Buf.Rcvbuf),
			Advice:  "the application reads too slowly: read faster, or raise SO_RCVBUF / net.core.rmem_max"}
	}},
	{Code: "socket.rcvbuf_full", Probe: event.UDPFailQueueRcvSkb, Find: func(e event.Event, ctx Context) Finding {
		return Finding{Level: Error,
			Message: fmt.Sprintf("UDP could not queue the datagram to its socket (rc %d; %d bytes queued, limit %d)", e.Ret, e.Facts.Buf.Rmem, e.Facts.Buf.Rcvbuf),
			Advice:  "the application reads too slowly: read faster, or raise SO_RCVBUF / net.core.rmem_max"}
	}},
	{Probe: event.FibTableLookup, When: func(e event.Event) bool { _, bad := fibErrors[e.Facts.Route.Err]; return bad }, Find: fibFinding},
	{Probe: event.Fib6TableLookup, When: func(e event.Event) bool { _, bad := fibErrors[e.Facts.Route.Err]; return bad }, Find: fibFinding},
	// Function probes with --ret (fexit/kretprobe): return values.
	{Code: "nf.hook_drop", Func: "nf_hook_slow", When: func(e event.Event) bool { return e.Return() && e.Ret < 0 },
		Find: func(e event.Event, ctx Context) Finding {
			return Finding{Level: Error,
				Message: fmt.Sprintf("dropped by a netfilter hook (nf_hook_slow returned %d)", e.Ret),
				Advice:  fill("a firewall rule took it: list them in netns {netns} (`nft -a list ruleset`, `iptables-save -c`); --diag with the rule trace names the rule", e, ctx)}
		}},
	{Code: "nf.rule_drop", Func: "ipt_do_table", When: iptDrop, Find: iptFinding("iptables")},
	{Code: "nf.rule_drop", Func: "ip6t_do_table", When: iptDrop, Find: iptFinding("ip6tables")},
	{Code: "dev.xmit_error", Probe: event.NetDevXmit, When: func(e event.Event) bool { return e.Ret != 0 },
		Find: func(e event.Event, ctx Context) Finding {
			return Finding{Level: Warn, Message: fmt.Sprintf("the driver of %s did not take the packet (rc %d)", orWord(e.Ifname, "the device"), e.Ret),
				Advice: "the device queue is busy or the device is down"}
		}},
}

// storyRules look at the whole story. One row per rule.
var storyRules = []StoryRule{
	natRule,
	forwardRule,
	deliveredRule,
	hookBlameRule,
	netfilterRule,
	forwardingOffRule,
	icmpCauseRule,
	inFlightRule,
}

// icmpCauseRule says why the kernel sent an ICMP error, from the rest of
// the story: host unreachable after a neighbour failure is the next hop's
// silence; "administratively prohibited" comes from a firewall (the story has a netfilter
// drop) or the routing (the packet died at the routing decision, or a
// route lookup returned -EACCES).
func icmpCauseRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, dropped := s.Drop()
	route := false
	for _, e := range s.Events {
		if (e.Probe == event.FibTableLookup || e.Probe == event.Fib6TableLookup) && e.Facts.Route.Err == -13 {
			route = true
		}
	}
	firewall := dropped && d.Reason == "NETFILTER_DROP"
	if dropped && !firewall && (strings.HasPrefix(d.Location, "ip_error+") || strings.HasPrefix(d.Location, "ip6_pkt_drop") ||
		strings.HasPrefix(d.Location, "ip6_pkt_prohibit")) {
		route = true
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Probe != "icmp_send" || f.Event < 0 {
			continue
		}
		e := s.Events[f.Event]
		e.Netns = f.Netns
		if c := e.Facts.ICMP; c.Type == 3 && c.Code == 1 && dropped && strings.HasPrefix(d.Reason, "NEIGH_") {
			// The kernel's own answer to a failed neighbour resolution.
			f.Level = Warn
			f.Message += ": the next hop did not answer ARP/ND"
			f.Advice = fill("the next hop for {daddr} does not answer ARP/ND on {dev}: check it is up and on that link (`ip neigh show dev {dev}` in netns {netns})", d, ctx)
			continue
		}
		if c := e.Facts.ICMP; c.Type != 3 || (c.Code != 9 && c.Code != 10 && c.Code != 13) {
			continue
		}
		switch {
		case firewall:
			f.Advice = fill("a firewall rule rejects it in netns {netns}: look for `reject` rules (`nft -a list ruleset`, `iptables-save`)", e, ctx)
		case route && !firewall:
			f.Message += ": the routing refuses it (a prohibit route or policy rule)"
			f.Advice = fill("find the prohibit route or rule in netns {netns}: `ip rule show`, `ip route get {daddr} from {saddr} iif {dev}`, `ip route show table all type prohibit`; delete it if the packet should pass", e, ctx)
		}
	}
	return nil
}

// natRule: addresses or ports change along the way.
func natRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	var out []Finding
	var prev *event.Event
	for i := range s.Events {
		e := &s.Events[i]
		if e.Packet.Source != event.FromHeaders {
			continue
		}
		if prev != nil && prev.Packet.Proto == e.Packet.Proto {
			p, q := prev.Packet, e.Packet
			var kinds []string
			if p.Dst != q.Dst || p.Dport != q.Dport {
				kinds = append(kinds, "destination NAT")
			}
			if p.Src != q.Src || p.Sport != q.Sport {
				kinds = append(kinds, "source NAT")
			}
			if len(kinds) > 0 {
				// Where the packet was last seen before the rewrite when
				// the later event has no namespace (consume_skb after local
				// delivery: no device).
				ns := e.Netns
				if ns == 0 {
					ns = prev.Netns
				}
				out = append(out, Finding{Level: Info, Code: "nat", Event: i, Probe: e.Name, Group: e.Group, Netns: ns,
					Evidence: []string{Describe(*prev, ctx), Describe(*e, ctx)},
					Message: fmt.Sprintf("NAT (%s) between %s and %s: %s became %s",
						strings.Join(kinds, ", "), where(*prev), where(*e), p, q),
					Advice: "addresses were rewritten (DNAT/SNAT or masquerade): filter on either form, and check the NAT rules (`nft list ruleset`, `iptables -t nat -S`, `conntrack -L`)"})
			}
		}
		prev = e
	}
	return out
}

// where names the place of an event for messages; a netfilter observer's
// is its hook and priority.
func where(e event.Event) string {
	if e.Probe != event.NFObserve {
		return e.Name
	}
	h := e.Facts.Hook
	return fmt.Sprintf("netfilter %s %s (after priority %d)", h.Family, h.Hook, h.Priority)
}

// forwardRule: the path's routed and bridged steps, each in its own words:
// a bridged packet is never said to be forwarded by routing.
func forwardRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	var out []Finding
	for _, st := range a.Path.Steps {
		if st.Kind != path.Routed && st.Kind != path.Bridged || st.OutDev == "" {
			continue
		}
		e := s.Events[st.Event]
		msg := fmt.Sprintf("routed (forwarded) in netns %s from %s to %s", ctx.ns(st.Netns), st.Dev, st.OutDev)
		code := "path.routed"
		if st.Kind == path.Bridged {
			code = "path.bridged"
			msg = fmt.Sprintf("bridged in netns %s by %s from port %s to %s", ctx.ns(st.Netns), orWord(st.Bridge, "a bridge"), st.Dev, st.OutDev)
		}
		out = append(out, Finding{Level: Info, Code: code, Event: st.Event, Probe: e.Name, Group: e.Group, Netns: st.Netns,
			Message: msg, Evidence: []string{Describe(e, ctx), "path: " + a.PathText}})
	}
	return out
}

// deliveredRule: the data reached a process.
func deliveredRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	for i, e := range s.Events {
		if e.Probe == event.SkbCopyDatagramIovec {
			return []Finding{{Level: Info, Code: "path.delivered", Event: i, Probe: e.Name, Group: e.Group, Netns: e.Netns,
				Evidence: []string{Describe(e, ctx)},
				Message:  fmt.Sprintf("delivered to process %s (pid %d) in netns %s", e.Comm, e.PID, ctx.ns(e.Netns))}}
		}
	}
	return nil
}

// DropRule returns the rule trace event that dropped the story's packet:
// a drop or reject verdict in the namespace of a netfilter drop, for the
// same packet. It returns nil when the story is no netfilter drop or the
// rule trace has no such event (yet).
func DropRule(s *track.Story, hits []RuleHit) *RuleHit {
	d, ok := s.Drop()
	if !ok || d.Reason != "NETFILTER_DROP" {
		return nil
	}
	var hit *RuleHit
	for i := range hits {
		r := &hits[i]
		if r.Netns == d.Netns && (r.Verdict == "drop" || strings.HasPrefix(r.Verdict, "reject")) && samePacket(r.Packet, d.Packet) {
			hit = r
		}
	}
	return hit
}

// netfilterRule: a netfilter drop, with the rule that did it from the rule
// trace.
func netfilterRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || d.Reason != "NETFILTER_DROP" {
		return nil
	}
	hit := DropRule(s, ctx.Rules)
	if hit == nil {
		return nil
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != "NETFILTER_DROP" {
			continue
		}
		f.Family, f.Table, f.Chain = hit.Family, hit.Table, hit.Chain
		if f.Hook != "" && !sameFamily(hit.Family, strings.Fields(f.Hook)[0]) {
			// The observers watched another family's hook than the
			// one whose table took the packet: theirs is not the hook.
			for k, ev := range f.Evidence {
				if strings.HasPrefix(ev, "netfilter observers") {
					f.Evidence[k] = fmt.Sprintf("netfilter observers in netns %s: the last one the packet passed was at %s, a hook of another family than the table that dropped it (%s): not where it was dropped", ctx.ns(d.Netns), f.Hook, hit.Family)
				}
			}
			f.Hook, f.Blamed = hit.Family, ""
		} else if f.Hook == "" {
			f.Hook = hit.Family
		}
		where := fmt.Sprintf("table %s %s, chain %s", hit.Family, hit.Table, hit.Chain)
		f.Evidence = append(f.Evidence, fmt.Sprintf("rule trace in netns %s: %s, handle %d, verdict %s%s",
			ctx.ns(hit.Netns), where, hit.Handle, hit.Verdict, map[bool]string{true: " (chain policy)"}[hit.Policy]))
		if hit.Policy {
			f.Code = "nf.policy_drop"
			f.Rule = "policy drop"
			f.Message = fmt.Sprintf("dropped by the policy of chain %s (%s): no rule accepted it", hit.Chain, where)
			f.Advice = fmt.Sprintf("add a rule that accepts it to %s, or change the policy (netns %s)", where, ctx.ns(d.Netns))
			continue
		}
		f.Rule = hit.Rule
		if f.Rule == "" {
			f.Rule = fmt.Sprintf("handle %d", hit.Handle)
		}
		f.Message = fmt.Sprintf("dropped by rule `%s` (%s, handle %d)", f.Rule, where, hit.Handle)
		if iptablesTable(hit) {
			cmd := "iptables"
			if hit.Family == "ip6" {
				cmd = "ip6tables"
			}
			f.Advice = fmt.Sprintf("an %s rule: list it with `%s -t %s -S %s` in netns %s and delete or change it",
				cmd, cmd, Shell(hit.Table), Shell(hit.Chain), ctx.ns(d.Netns))
		} else {
			f.Advice = fmt.Sprintf("delete or change it: `nft delete rule %s %s %s handle %d` in netns %s",
				Shell(hit.Family), Shell(NftName(hit.Table)), Shell(NftName(hit.Chain)), hit.Handle, ctx.ns(d.Netns))
		}
	}
	return nil
}

// sameFamily reports whether a table of family table can run at a hook of
// family hook: the same, or inet at an ip or ip6 hook.
func sameFamily(table, hook string) bool {
	return table == hook || (table == "inet" && (hook == "ip" || hook == "ip6"))
}

// iptablesTable reports whether a rule hit is in a table iptables-nft made.
func iptablesTable(h *RuleHit) bool {
	switch h.Table {
	case "filter", "nat", "mangle", "raw", "security":
		return (h.Family == "ip" || h.Family == "ip6") && h.Chain == strings.ToUpper(h.Chain)
	}
	return false
}

// samePacket reports whether a rule trace's packet is the story's packet.
func samePacket(a, b event.Packet) bool {
	if a.Src != b.Src || a.Dst != b.Dst || a.Proto != b.Proto {
		return false
	}
	switch a.Proto {
	case 6, 17:
		return a.Sport == b.Sport && a.Dport == b.Dport
	case 1, 58:
		return a.ICMPType == b.ICMPType && a.ICMPID == b.ICMPID && a.ICMPSeq == b.ICMPSeq
	}
	return true
}

// forwardingOffRule: a packet that arrived on a device of a namespace, was
// not for it, and died where the kernel routes it, while forwarding is off
// there. It does not fire for a packet the namespace sent itself, for one
// a bridge switched (see internal/path), for one addressed to the
// namespace, or for a drop somewhere other than the routing decision.
func forwardingOffRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Host == nil || !d.Packet.Dst.IsValid() || !routingDrop(d) {
		return nil
	}
	dev := a.Path.ArrivedOn(d.Netns)
	if dev == "" {
		return nil
	}
	local, ok := ctx.Host.IsLocal(d.Netns, d.Packet.Dst)
	if !ok || local || d.Packet.Dst.IsMulticast() {
		return nil
	}
	on, ok := ctx.Host.Forwarding(d.Netns, d.Packet.Family, dev)
	if !ok || on {
		return nil
	}
	v := "net.ipv4.ip_forward=1"
	key := "net.ipv4.conf." + dev + ".forwarding"
	if d.Packet.Family == 6 {
		v = "net.ipv6.conf.all.forwarding=1"
		key = "net.ipv6.conf.all.forwarding"
	}
	return []Finding{{Level: Error, Code: "fwd.disabled", Event: len(s.Events) - 1, Probe: d.Name, Group: d.Group, Netns: d.Netns,
		Message: fmt.Sprintf("forwarding is disabled in netns %s, and %s is not one of its addresses: it will not route the packet it received on %s", ctx.ns(d.Netns), d.Packet.Dst, dev),
		Advice:  fmt.Sprintf("if netns %s is meant to route it, enable forwarding: `sysctl -w %s`; otherwise send to an address of this host", ctx.ns(d.Netns), v),
		Evidence: []string{
			Describe(d, ctx),
			"path: " + a.PathText,
			fmt.Sprintf("live check: %s = 0 in netns %s", key, ctx.ns(d.Netns)),
			fmt.Sprintf("live check: %s is not an address of netns %s", d.Packet.Dst, ctx.ns(d.Netns)),
		}}}
}

// routingDrop reports whether a drop happened at the kernel's routing
// decision for a received packet: where forwarding being off kills it.
func routingDrop(d event.Event) bool {
	switch d.Reason {
	case "IP_INADDRERRORS", "IP_INNOROUTES":
		return true
	}
	for _, fn := range []string{"ip_error+", "ip6_forward+", "ip_forward+", "ip6_pkt_drop+", "ip_route_input"} {
		if strings.HasPrefix(d.Location, fn) {
			return true
		}
	}
	return false
}

// inFlightRule: the story ended without the kernel freeing the skb.
func inFlightRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	if s.Ended || !s.Packet() {
		return nil
	}
	last := s.Events[len(s.Events)-1]
	return []Finding{{Level: Info, Code: "path.in_flight", Event: -1, Evidence: []string{Describe(last, ctx)},
		Message: fmt.Sprintf("not freed while traced: last seen at %s in netns %s (queued, or freed where no tracepoint sees it)", last.Name, ctx.ns(last.Netns))}}
}

// iptDrop: an iptables (legacy) table returned the verdict NF_DROP.
func iptDrop(e event.Event) bool {
	return e.Return() && e.Facts.Table.Name != "" && e.Facts.Table.Verdict == event.VerdictDrop
}

// iptFinding names the table and chain of an iptables (legacy) drop.
func iptFinding(cmd string) func(e event.Event, ctx Context) Finding {
	return func(e event.Event, ctx Context) Finding {
		table, chain := e.Facts.Table.Name, e.Facts.Table.Hook.Chain()
		return Finding{Level: Error, Table: table, Chain: chain,
			Message: fmt.Sprintf("dropped by %s: table %s, chain %s (verdict NF_DROP)", cmd, table, chain),
			Advice:  fill(fmt.Sprintf("find the rule: `%s-legacy -t %s -L %s -v -n --line-numbers` in netns {netns} (the packet counters show which matched), then delete or change it", cmd, Shell(table), Shell(chain)), e, ctx)}
	}
}
