package diag

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/path"
	"github.com/skbtrail/skbtrail/internal/track"
)

// The rules that ask the live system (ctx.Live) what the events cannot
// tell: which route or policy rule, which socket, which tc program, which
// sysctl. Each cites what it checked in its evidence.

// liveRules run after the other story rules. One row per rule.
var liveRules = []StoryRule{routeCheckRule, socketCheckRule, tcCheckRule, rpFilterCheckRule, silentRule, mtuCheckRule, neighCheckRule}

// neighCheckRule: a neighbour failure names the next hop (the route's
// gateway, or the destination on the link) and its entry's state now.
func neighCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || !strings.HasPrefix(d.Reason, "NEIGH_") || !d.Packet.Dst.IsValid() {
		return nil
	}
	rc, ok := ctx.Live.Route(d.Netns, d.Packet.Src, d.Packet.Dst, a.Path.ArrivedOn(d.Netns))
	if !ok || rc.Dev == "" {
		return nil
	}
	hop := d.Packet.Dst
	if rc.Via.IsValid() {
		hop = rc.Via
	}
	state, ok := ctx.Live.Neigh(d.Netns, rc.Dev, hop)
	if !ok {
		return nil
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != d.Reason {
			continue
		}
		f.Message += fmt.Sprintf(": the next hop %s on %s", hop, rc.Dev)
		if state != "" {
			f.Message += fmt.Sprintf(" (its entry is %s now)", state)
		}
		f.Evidence = append(f.Evidence, fmt.Sprintf("live check in netns %s: the route to %s leaves by %s%s; `ip neigh show %s dev %s`: %s",
			ctx.ns(d.Netns), d.Packet.Dst, rc.Dev, map[bool]string{true: " via " + hop.String()}[rc.Via.IsValid()], hop, rc.Dev, orWord(state, "no entry")))
	}
	return nil
}

// mtuCheckRule: a packet too big for the way out names the route's device
// and its MTU.
func mtuCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || d.Reason != "PKT_TOO_BIG" || !d.Packet.Dst.IsValid() {
		return nil
	}
	rc, ok := ctx.Live.Route(d.Netns, d.Packet.Src, d.Packet.Dst, a.Path.ArrivedOn(d.Netns))
	if !ok || rc.Dev == "" {
		return nil
	}
	mtu, ok := ctx.Live.MTU(d.Netns, rc.Dev)
	if !ok {
		return nil
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != "PKT_TOO_BIG" {
			continue
		}
		f.Code = "mtu.too_big"
		size := ""
		if d.Packet.IPLen != 0 && d.Packet.Family == 4 {
			size = fmt.Sprintf(" (%d bytes)", d.Packet.IPLen)
		}
		f.Message += fmt.Sprintf("%s: the route to %s leaves by %s, whose MTU is %d", size, d.Packet.Dst, rc.Dev, mtu)
		f.Evidence = append(f.Evidence, fmt.Sprintf("live check in netns %s: the route to %s leaves by %s, MTU %d", ctx.ns(d.Netns), d.Packet.Dst, rc.Dev, mtu))
	}
	return nil
}

// routeFailure reports whether a drop is a route lookup's failure.
func routeFailure(s *track.Story, d event.Event) bool {
	switch d.Reason {
	case "IP_INNOROUTES", "IP_NOROUTE", "IP_OUTNOROUTES":
		return true
	case "NETFILTER_DROP":
		return false
	}
	if strings.HasPrefix(d.Location, "ip_error+") || strings.HasPrefix(d.Location, "ip6_pkt_") || strings.HasPrefix(d.Location, "dst_discard") {
		return true
	}
	for _, e := range s.Events {
		if e.Probe == event.FibTableLookup || e.Probe == event.Fib6TableLookup {
			if _, bad := fibErrors[e.Facts.Route.Err]; bad {
				return true
			}
		}
		if e.Probe == event.ICMPSend && e.Facts.ICMP.Type == 3 && (e.Facts.ICMP.Code == 0 || e.Facts.ICMP.Code == 13) {
			return true
		}
	}
	return false
}

// routeCheckRule: a packet that died for want of a route: the live route
// lookup says which route or policy rule refuses it, in which table.
func routeCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || !d.Packet.Dst.IsValid() || !routeFailure(s, d) {
		return nil
	}
	iif := a.Path.ArrivedOn(d.Netns)
	rc, ok := ctx.Live.Route(d.Netns, d.Packet.Src, d.Packet.Dst, iif)
	if !ok {
		return nil
	}
	lookup := fmt.Sprintf("ip route get %s", d.Packet.Dst)
	if iif != "" {
		lookup += fmt.Sprintf(" from %s iif %s", d.Packet.Src, iif)
	}
	answer := rc.Errno
	if answer == "" {
		answer = rc.Type + " route"
		if rc.Dev != "" {
			answer += " via " + rc.Dev
		}
	}
	ev := []string{fmt.Sprintf("live check in netns %s: `%s`: %s", ctx.ns(d.Netns), lookup, answer)}
	f := Finding{Level: Error, Event: len(s.Events) - 1, Probe: d.Name, Group: d.Group, Netns: d.Netns}
	switch {
	case rc.Rule != "" && (rc.Type == "prohibit" || rc.Type == "blackhole" || rc.Type == "unreachable"):
		ev = append(ev, fmt.Sprintf("live check in netns %s: `ip rule`: %s decides it", ctx.ns(d.Netns), rc.Rule))
		f.Code = "route.rule_" + rc.Type
		f.Message = fmt.Sprintf("the policy rule `%s` in netns %s refuses packets to %s (%s): no route table is consulted", rc.Rule, ctx.ns(d.Netns), d.Packet.Dst, rc.Type)
		f.Advice = fmt.Sprintf("delete or change the rule if the packet should pass: `ip rule del pref %s` in netns %s", strings.SplitN(rc.Rule, ":", 2)[0], ctx.ns(d.Netns))
	case rc.Table != 0 && (rc.Type == "prohibit" || rc.Type == "blackhole" || rc.Type == "unreachable"):
		ev = append(ev, fmt.Sprintf("live check in netns %s: table %d has the %s route %s", ctx.ns(d.Netns), rc.Table, rc.Type, rc.Prefix))
		if rc.Rule != "" {
			ev = append(ev, fmt.Sprintf("live check in netns %s: the policy rule `%s` led there", ctx.ns(d.Netns), rc.Rule))
		}
		f.Code = "route." + rc.Type
		f.Message = fmt.Sprintf("%s %s route (%s, table %d) in netns %s covers %s", article(rc.Type), rc.Type, rc.Prefix, rc.Table, ctx.ns(d.Netns), d.Packet.Dst)
		f.Advice = fmt.Sprintf("delete it if the packet should pass: `ip route del %s %s table %d` in netns %s", rc.Type, rc.Prefix, rc.Table, ctx.ns(d.Netns))
	case rc.Type == "none":
		f.Code = "route.none"
		f.Message = fmt.Sprintf("netns %s has no route to %s (the live lookup finds none)", ctx.ns(d.Netns), d.Packet.Dst)
		f.Advice = fmt.Sprintf("add a route to %s (`ip route add %s via GATEWAY`) or a default route in netns %s", d.Packet.Dst, d.Packet.Dst, ctx.ns(d.Netns))
	default:
		return nil // the lookup succeeds now, or the walk could not confirm the cause
	}
	f.Evidence = append([]string{Describe(d, ctx)}, ev...)
	// This finding names the cause; the event findings that guessed at it
	// (a firewall, a missing route) give way.
	for i := range a.Findings {
		g := &a.Findings[i]
		if g.Probe == "icmp_send" && f.Code != "route.none" {
			g.Message = strings.SplitN(g.Message, ":", 2)[0] + ": the routing refuses it (a route or a policy rule)"
			g.Advice = "see the route finding: " + f.Message
		}
		if (g.Probe == "fib_table_lookup" || g.Probe == "fib6_table_lookup") && g.Code == f.Code {
			f.Code = "" // the event finding says it already; add the evidence there
			g.Evidence = append(g.Evidence, ev...)
			g.Advice = f.Advice
		}
	}
	if f.Code == "" {
		return nil
	}
	return []Finding{f}
}

// socketCheckRule: nothing listened on the port at the packet's address:
// the live sockets say what does listen on that port, and where.
func socketCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || d.Reason != "NO_SOCKET" || (d.Packet.Proto != 6 && d.Packet.Proto != 17) {
		return nil
	}
	ls, ok := ctx.Live.Listeners(d.Packet.Proto, d.Packet.Family, d.Packet.Dport)
	if !ok {
		return nil
	}
	proto := event.ProtoName(d.Packet.Proto)
	verb := "listens"
	if proto == "udp" {
		verb = "is bound"
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != "NO_SOCKET" {
			continue
		}
		if len(ls) == 0 {
			f.Evidence = append(f.Evidence, fmt.Sprintf("live check (sock_diag): no %s socket on port %d in any namespace skbtrail sees", proto, d.Packet.Dport))
			continue
		}
		var where []string
		for _, l := range ls {
			at := fmt.Sprintf("%s in netns %s", l.Addr, ctx.ns(l.Netns))
			where = append(where, at)
			f.Evidence = append(f.Evidence, fmt.Sprintf("live check (sock_diag): a %s socket %s on %s", proto, verb, at))
		}
		f.Code = "socket.bound_elsewhere"
		f.Message += fmt.Sprintf(", but a socket %s on port %d at %s", verb, d.Packet.Dport, strings.Join(where, ", "))
		f.Advice = fmt.Sprintf("the server is bound to another address or namespace: bind it to %s:%d (or to all addresses) in netns %s, or send to where it listens",
			d.Packet.Dst, d.Packet.Dport, ctx.ns(d.Netns))
	}
	return nil
}

// tcCheckRule: a tc drop names the filters, and the BPF programs, on that
// device and direction.
func tcCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || d.Ifname == "" || (d.Reason != "TC_INGRESS" && d.Reason != "TC_EGRESS") {
		return nil
	}
	ingress := d.Reason == "TC_INGRESS"
	dir := map[bool]string{true: "ingress", false: "egress"}[ingress]
	fs, ok := ctx.Live.TCFilters(d.Netns, d.Ifname, ingress)
	if !ok {
		return nil
	}
	var progs, ev []string
	for _, f := range fs {
		line := fmt.Sprintf("live check in netns %s: tc filter on %s %s: %s pref %d", ctx.ns(d.Netns), d.Ifname, dir, f.Kind, f.Pref)
		if f.Kind == "bpf" {
			line += fmt.Sprintf(", BPF program %s id %d tag %s", f.Name, f.ID, f.Tag)
			if f.DirectAction {
				line += " (direct-action)"
			}
			progs = append(progs, fmt.Sprintf("%s (id %d, tag %s)", f.Name, f.ID, f.Tag))
		}
		ev = append(ev, line)
	}
	if len(fs) == 0 {
		ev = append(ev, fmt.Sprintf("live check in netns %s: no tc filter on %s %s now (a tcx program, or one removed since, may have dropped it)", ctx.ns(d.Netns), d.Ifname, dir))
	}
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != d.Reason {
			continue
		}
		f.Evidence = append(f.Evidence, ev...)
		switch len(progs) {
		case 0:
		case 1:
			f.Message += fmt.Sprintf(": the BPF program %s", progs[0])
			f.Advice = fmt.Sprintf("the BPF program %s on %s %s returned TC_ACT_SHOT: see `bpftool prog show id %d`; `tc filter show dev %s %s` in netns %s",
				progs[0], d.Ifname, dir, fs[firstBPF(fs)].ID, d.Ifname, dir, ctx.ns(d.Netns))
		default:
			f.Message += fmt.Sprintf(": one of the BPF programs %s", strings.Join(progs, ", "))
		}
	}
	return nil
}

func firstBPF(fs []TCFilter) int {
	for i, f := range fs {
		if f.Kind == "bpf" {
			return i
		}
	}
	return 0
}

// rpFilterCheckRule: a reverse path filter drop cites the sysctls.
func rpFilterCheckRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || ctx.Live == nil || d.Reason != "IP_RPFILTER" || d.Ifname == "" {
		return nil
	}
	all, ok1 := ctx.Live.Sysctl(d.Netns, "net/ipv4/conf/all/rp_filter")
	dev, ok2 := ctx.Live.Sysctl(d.Netns, "net/ipv4/conf/"+d.Ifname+"/rp_filter")
	if !ok1 || !ok2 {
		return nil
	}
	for i := range a.Findings {
		if a.Findings[i].Reason == "IP_RPFILTER" {
			a.Findings[i].Evidence = append(a.Findings[i].Evidence, fmt.Sprintf(
				"live check in netns %s: net.ipv4.conf.all.rp_filter=%d, net.ipv4.conf.%s.rp_filter=%d (the higher one applies)", ctx.ns(d.Netns), all, d.Ifname, dev))
		}
	}
	return nil
}

// silentRule: an echo request consumed with no drop anywhere. skbtrail
// traces the request's direction, so it says what it saw, and what a live
// check explains, instead of "no problem".
func silentRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	if !s.Ended || len(s.Events) == 0 {
		return nil
	}
	end, ok := a.Path.End()
	if !ok {
		return nil
	}
	// ICMPv6 frees an echo request it ignores as a drop (no reason) in
	// icmpv6_rcv; IPv4 consumes it.
	d := s.Events[end.Event]
	icmpDrop := end.Kind == path.Dropped && (strings.HasPrefix(d.Location, "icmpv6_rcv+") || strings.HasPrefix(d.Location, "icmp_rcv+")) &&
		(d.Reason == "NOT_SPECIFIED" || d.Reason == "")
	if end.Kind != path.Consumed && !icmpDrop {
		return nil
	}
	p := s.Events[end.Event].Packet
	first := s.Events[0].Packet
	if first.Source == event.FromHeaders {
		p = first
	}
	echo := (p.Proto == 1 && p.ICMPType == 8) || (p.Proto == 58 && p.ICMPType == 128)
	if !echo {
		return nil
	}
	ns := end.Netns
	if dev := a.Path.ArrivedOn(ns); dev == "" {
		return nil // consumed where it was not received: not the answerer
	}
	if icmpDrop && ctx.Live == nil {
		return nil
	}
	// (Past here, with icmpDrop, only the sysctl check below can speak.)
	f := Finding{Level: Info, Code: "path.consumed", Event: end.Event, Netns: ns,
		Message:  fmt.Sprintf("the echo request was consumed in netns %s, with no drop; skbtrail traced this direction only, so it cannot tell whether a reply was sent", ctx.ns(ns)),
		Evidence: []string{Describe(s.Events[end.Event], ctx), "path: " + a.PathText}}
	if ctx.Live != nil {
		key, name := "net/ipv4/icmp_echo_ignore_all", "net.ipv4.icmp_echo_ignore_all"
		if p.Proto == 58 {
			key, name = "net/ipv6/icmp/echo_ignore_all", "net.ipv6.icmp.echo_ignore_all"
		}
		if v, ok := ctx.Live.Sysctl(ns, key); ok {
			f.Evidence = append(f.Evidence, fmt.Sprintf("live check in netns %s: %s=%d", ctx.ns(ns), name, v))
			if v != 0 && icmpDrop {
				for i := range a.Findings {
					g := &a.Findings[i]
					if g.Probe == "kfree_skb" && g.Event == end.Event {
						g.Level, g.Code = Warn, "icmp.echo_ignored"
						g.Message = fmt.Sprintf("the echo request was freed by ICMP in netns %s and no reply is sent: %s=%d there", ctx.ns(ns), name, v)
						g.Advice = fmt.Sprintf("if netns %s should answer pings: `sysctl -w %s=0` there", ctx.ns(ns), name)
						g.Evidence = append(g.Evidence, f.Evidence[2:]...)
						a.Levels[end.Event] = Warn
					}
				}
				return nil
			}
			if icmpDrop {
				return nil // the drop finding stands
			}
			if v != 0 {
				f.Level, f.Code = Warn, "icmp.echo_ignored"
				f.Message = fmt.Sprintf("the echo request was consumed in netns %s and no reply is sent: %s=%d there", ctx.ns(ns), name, v)
				f.Advice = fmt.Sprintf("if netns %s should answer pings: `sysctl -w %s=0` there", ctx.ns(ns), name)
			}
		}
	}
	return []Finding{f}
}

func article(w string) string {
	if strings.IndexByte("aeiou", w[0]) >= 0 {
		return "an"
	}
	return "a"
}
