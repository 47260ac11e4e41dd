package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The --diag precision corpus (issue 16): each scenario is a real failure
// in namespaces. It asserts the finding the user needs, and lists the
// claims that would be false for that setup: no WARN or ERROR finding may
// make them (mustNotClaim).

// mustNotClaim fails the test if a WARN or ERROR finding of any analysis
// says one of claims (in its message or advice): each is false for the
// scenario's setup.
func (r diagRun) mustNotClaim(t *testing.T, why string, claims ...string) {
	t.Helper()
	t.Logf("analyses:\n%s", r.dump())
	for _, a := range r.analyses {
		for _, f := range a.Findings {
			if f.Level == "info" {
				continue
			}
			text := f.Message + "\n" + f.Advice
			for _, c := range claims {
				if strings.Contains(text, c) {
					t.Errorf("a false %s finding (%s) says %q:\n  %s\nall analyses:\n%s", f.Level, why, c, f, r.dump())
				}
			}
		}
	}
}

// reasonless finds and checks the drop finding on a kernel without drop
// reasons (before 5.17): kfree_skb in fn, the function that dropped the
// packet, an error saying the kernel gives no reasons, about namespace ino.
// The scenario's named finding (by reason or code) needs the reason; the
// caller still checks its must-not-claim list.
func (r diagRun) reasonless(t *testing.T, reason, fn string, ino uint64, ns string) finding {
	t.Helper()
	f, _ := r.mustFindDrop(t, reason, fn)
	checkFinding(t, f).unexplained(fn).eq("code", f.Code, "drop").netns(ino, ns).done(r)
	return f
}

// countersSay checks that the kernel counters finding names each of subs:
// what a kernel without drop reasons still tells of the cause.
func (r diagRun) countersSay(t *testing.T, subs ...string) {
	t.Helper()
	f, _ := r.mustFind(t, "about the kernel counters", byCode("counters"))
	checkFinding(t, f).eq("level", f.Level, "info").has("evidence", strings.Join(f.Evidence, "\n"), subs...).done(r)
}

// bridged is three namespaces, A - S - B, where S bridges A and B (one
// subnet) with a Linux bridge br0 and routes nothing.
type bridged struct {
	A, S, B          string
	PortA, PortB     string // the bridge's ports in S
	A4, B4, A6, B6   string
	InoA, InoS, InoB uint64
}

func newBridged(t *testing.T) *bridged {
	t.Helper()
	needRoot(t)
	n := allocSubnet(t)
	id := fmt.Sprintf("%s%06x%04x", nsPrefix, os.Getpid()&0xffffff, rand.IntN(1<<16))
	b := &bridged{A: id + "-a", S: id + "-r", B: id + "-b", PortA: "veth-sa", PortB: "veth-sb",
		A4: subnetAddr(n, 1), B4: subnetAddr(n, 2), A6: fmt.Sprintf("fd00:%x::1", n), B6: fmt.Sprintf("fd00:%x::2", n)}
	for _, ns := range []string{b.A, b.S, b.B} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := runCmd("ip", "netns", "del", ns); err != nil {
				t.Logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
			}
		})
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "-n", b.S, "link", "add", "br0", "type", "bridge")
	mustRun(t, "ip", "-n", b.A, "link", "add", "veth-a", "type", "veth", "peer", "name", b.PortA, "netns", b.S)
	mustRun(t, "ip", "-n", b.B, "link", "add", "veth-b", "type", "veth", "peer", "name", b.PortB, "netns", b.S)
	for _, p := range []string{b.PortA, b.PortB} {
		mustRun(t, "ip", "-n", b.S, "link", "set", p, "master", "br0")
		mustRun(t, "ip", "-n", b.S, "link", "set", p, "up")
	}
	mustRun(t, "ip", "-n", b.S, "link", "set", "br0", "up")
	for _, s := range []struct{ ns, dev, a4, a6 string }{{b.A, "veth-a", b.A4, b.A6}, {b.B, "veth-b", b.B4, b.B6}} {
		mustRun(t, "ip", "-n", s.ns, "addr", "add", s.a4+"/24", "dev", s.dev)
		mustRun(t, "ip", "-n", s.ns, "addr", "add", s.a6+"/64", "dev", s.dev, "nodad")
		mustRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
	}
	waitFor(t, 10*time.Second, "bridge path up", func() (bool, string) {
		ok, out := ping(b.A, b.B4)
		return ok, out
	})
	mustPing(t, b.A, b.B6)
	b.InoA, b.InoS, b.InoB = nsInode(t, b.A), nsInode(t, b.S), nsInode(t, b.B)
	return b
}

// Bridged path: S bridges A and B, and an nftables bridge-family rule in S
// drops A's echo requests. The analysis names the bridge rule; it must not
// speak of forwarding, ip_forward or routing (nothing is routed), nor of
// an ip-family hook.
func TestDiagCorpusBridgeNftDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	b := newBridged(t)
	mustNS(t, b.S, "nft", "add", "table", "bridge", "sbtbr")
	mustNS(t, b.S, "nft", "add", "chain", "bridge", "sbtbr", "brfwd", "{ type filter hook forward priority 0; }")
	mustNS(t, b.S, "nft", "add", "rule", "bridge", "sbtbr", "brfwd", "icmp", "type", "echo-request", "drop")
	mustNS(t, b.S, "nft", "add", "rule", "bridge", "sbtbr", "brfwd", "icmpv6", "type", "echo-request", "drop")

	for _, c := range []struct{ proto, src, dst string }{{"icmp", b.A4, b.B4}, {"icmp6", b.A6, b.B6}} {
		d := diag(t, func() { pingFails(t, b.A, c.dst) }, "--netns", b.S, "-p", c.proto, "-s", c.src, "-d", c.dst)
		if !haveReasons { // no reason, rule trace nor observer: told by nf_hook_slow
			d.reasonless(t, "NETFILTER_DROP", "nf_hook_slow", b.InoS, b.S)
			d.mustNotClaim(t, "the packet was bridged", "forwarding", "ip_forward", "route", "hook ip ", "hook ip6 ")
			continue
		}
		f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
		k := checkFinding(t, f).eq("level", f.Level, "error").eq("code", f.Code, "nf.rule_drop").netns(b.InoS, b.S)
		if f.Table != "" { // named by the rule trace, where it saw the packet
			k.eq("family", f.Family, "bridge").eq("table", f.Table, "sbtbr")
		}
		if f.Hook != "" {
			k.match("hook", f.Hook, regexp.MustCompile(`^bridge`))
		}
		k.done(d)
		d.mustNotClaim(t, "the packet was bridged", "forwarding", "ip_forward", "route", "hook ip ", "hook ip6 ")
	}
}

// An unreachable route on a forwarding R: R answers host unreachable.
// The analysis names the unreachable route and its table; it must not
// blame the next hop's ARP, a firewall or forwarding.
func TestDiagCorpusUnreachableRoute(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	mustNS(t, r.R, "ip", "route", "add", "unreachable", r.B4+"/32")

	d := diag(t, func() { pingFails(t, r.A, r.B4) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	f, _ := d.mustFind(t, "route.unreachable", byCode("route.unreachable"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, "unreachable route ("+r.B4+"/32, table 254)").
		has("advice", f.Advice, "ip route del unreachable "+r.B4+"/32 table 254", r.R).
		netns(r.InoR, r.R).done(d)
	d.mustNotClaim(t, "an unreachable route refuses it", "ARP/ND", "firewall", "forwarding is disabled", "ip_forward")
}

// The policy of an nftables input chain in B drops pings (no rule
// matches): nf.policy_drop, naming the chain; no routing or forwarding
// claim.
func TestDiagCorpusNftPolicyDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	mustNS(t, p.B, "nft", "add", "table", "inet", "sbtpol")
	mustNS(t, p.B, "nft", "add", "chain", "inet", "sbtpol", "input", "{ type filter hook input priority 0; policy drop; }")
	mustNS(t, p.B, "nft", "add", "rule", "inet", "sbtpol", "input", "ip6", "nexthdr", "ipv6-icmp", "accept")

	d := diag(t, func() { pingFails(t, p.A, p.B4) }, "--netns", p.B, "-p", "icmp", "-s", p.A4, "-d", p.B4)
	if !haveReasons {
		d.reasonless(t, "NETFILTER_DROP", "nf_hook_slow", p.InoB, p.B)
		d.mustNotClaim(t, "a chain's policy dropped it", "forwarding", "ip_forward", "route", "prohibit")
		return
	}
	f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	k := checkFinding(t, f).eq("level", f.Level, "error").netns(p.InoB, p.B)
	if f.Table != "" {
		k.eq("code", f.Code, "nf.policy_drop").eq("chain", f.Chain, "input").has("message", f.Message, "policy of chain input")
	}
	k.done(d)
	d.mustNotClaim(t, "a chain's policy dropped it", "forwarding", "ip_forward", "route", "prohibit")
}

// An nftables rule in B rejects pings with admin-prohibited: here the
// firewall is to blame, and no finding may speak of a prohibit route or
// policy rule.
func TestDiagCorpusNftReject(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	mustNS(t, p.B, "nft", "add", "table", "inet", "sbtrej")
	mustNS(t, p.B, "nft", "add", "chain", "inet", "sbtrej", "input", "{ type filter hook input priority 0; }")
	mustNS(t, p.B, "nft", "add", "rule", "inet", "sbtrej", "input", "icmp", "type", "echo-request", "reject", "with", "icmp", "admin-prohibited")

	d := diag(t, func() { pingFails(t, p.A, p.B4) }, "--netns", p.B, "-p", "icmp", "-s", p.A4, "-d", p.B4)
	if haveReasons {
		f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
		checkFinding(t, f).eq("level", f.Level, "error").eq("code", f.Code, "nf.rule_drop").netns(p.InoB, p.B).done(d)
	} else {
		d.reasonless(t, "NETFILTER_DROP", "nf_hook_slow", p.InoB, p.B)
	}
	d.mustNotClaim(t, "a firewall rule rejected it", "prohibit route", "policy rule `", "routing refuses", "forwarding")
}

// Neighbour failure on the first hop: A pings an address of its own link
// that nobody has. A drops it (NEIGH_FAILED); no finding may say that
// forwarding is disabled in A (A sent the packet) or blame a route.
func TestDiagCorpusNeighFailedSender(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	ghost := strings.TrimSuffix(p.A4, ".1") + ".99"
	d := diag(t, func() {
		inNS(p.A, "ping", "-n", "-c", "1", "-W", "5", ghost)
	}, "--netns", p.A, "-p", "icmp", "-s", p.A4, "-d", ghost)
	if !haveReasons { // told by neigh_invalidate, which gave up resolving
		d.reasonless(t, "NEIGH_FAILED", "neigh_invalidate", p.InoA, p.A)
		d.mustNotClaim(t, "A sent the packet to its own link", "forwarding", "ip_forward", "no route")
		return
	}
	f, _ := d.mustFind(t, "with reason NEIGH_FAILED", byReason("NEIGH_FAILED"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, "neighbour", "the next hop "+ghost+" on "+p.IfA).
		has("evidence", strings.Join(f.Evidence, "\n"), "ip neigh show "+ghost).
		netns(p.InoA, p.A).done(d)
	d.mustNotClaim(t, "A sent the packet to its own link", "forwarding", "ip_forward", "no route")
}

// A policy rule `ip rule add to B prohibit` in a forwarding R: R answers
// with ICMP administratively prohibited. The analysis blames the routing
// (a prohibit route or policy rule), never a firewall rule.
func TestDiagCorpusProhibitPolicyRule(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	mustNS(t, r.R, "ip", "rule", "add", "to", r.B4, "prohibit")

	d := diag(t, func() { pingFails(t, r.A, r.B4) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	if sawICMPSend(t, d) {
		f, _ := d.mustFind(t, "about the ICMP error R sends", func(f finding) bool { return f.Probe == "icmp_send" })
		checkFinding(t, f).eq("level", f.Level, "error").
			has("message", f.Message, "administratively prohibited", "the routing refuses it").
			netns(r.InoR, r.R).done(d)
	}
	if !haveReasons { // the drop is told by the routing decision
		f, _ := d.mustFindDrop(t, "IP_OUTNOROUTES", "ip_error")
		checkFinding(t, f).routeRefused(r.B4, r.R).netns(r.InoR, r.R).done(d)
	}
	f, _ := d.mustFind(t, "route.rule_prohibit", byCode("route.rule_prohibit"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, "from all to "+r.B4+" prohibit").
		has("advice", f.Advice, "ip rule del pref", r.R).
		netns(r.InoR, r.R).done(d)
	d.mustNotClaim(t, "there is no firewall rule", "firewall rule", "reject rules", "forwarding is disabled", "ip_forward")
}

// A blackhole route on a forwarding R. The analysis names the blackhole
// route and the namespace by name, never "netns 0".
func TestDiagCorpusBlackholeRoute(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	mustNS(t, r.R, "ip", "route", "add", "blackhole", r.B4+"/32")

	d := diag(t, func() { pingFails(t, r.A, r.B4) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	f, _ := d.mustFind(t, "route.blackhole", byCode("route.blackhole"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, "blackhole route ("+r.B4+"/32, table 254)").
		has("advice", f.Advice, "ip route del blackhole "+r.B4+"/32 table 254", r.R).
		has("evidence", strings.Join(f.Evidence, "\n"), "live check", "ip route get "+r.B4).
		netns(r.InoR, r.R).done(d)
	d.mustNotClaim(t, "the namespace is known", "netns 0 ", "netns 0:", "(unknown)", "forwarding is disabled", "firewall")
}

// An ip6tables rule in B drops echo requests: the advice says ip6tables.
func TestDiagCorpusIp6tablesDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	mustNS(t, p.B, "ip6tables", "-A", "INPUT", "-p", "icmpv6", "--icmpv6-type", "echo-request", "-j", "DROP")

	d := diag(t, func() { pingFails(t, p.A, p.B6) }, "--netns", p.B, "-p", "icmp6", "-s", p.A6, "-d", p.B6)
	if !haveReasons {
		d.reasonless(t, "NETFILTER_DROP", "nf_hook_slow", p.InoB, p.B)
		d.mustNotClaim(t, "it is an ip6tables rule", "`iptables ", "ip_forward", "forwarding is disabled")
		return
	}
	f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	c := checkFinding(t, f).eq("level", f.Level, "error").netns(p.InoB, p.B)
	if f.Table != "" {
		c.eq("family", f.Family, "ip6").has("advice", f.Advice, "ip6tables -t filter -S INPUT")
	}
	c.done(d)
	d.mustNotClaim(t, "it is an ip6tables rule", "`iptables ", "ip_forward", "forwarding is disabled")
}

// byCode matches findings with the given code.
func byCode(code string) func(finding) bool {
	return func(f finding) bool { return f.Code == code }
}

// A TCP server in B listens on 127.0.0.1 only; A connects to B's address.
// B resets the SYN (NO_SOCKET); the analysis says what does listen on that
// port: 127.0.0.1 in B (socket.bound_elsewhere). IPv4 and IPv6.
func TestDiagCorpusTCPBoundElsewhere(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	for _, c := range []struct{ name, src, dst, listen, proto string }{
		{"ipv4", p.A4, p.B4, "127.0.0.1", "tcp"},
		{"ipv6", p.A6, p.B6, "::1", "tcp"},
	} {
		port := 7100
		if c.name == "ipv6" {
			port = 7106
		}
		listenTCP(t, p.B, net.JoinHostPort(c.listen, fmt.Sprint(port)))
		d := diag(t, func() {
			if err := dialTCP(t, p.A, net.JoinHostPort(c.dst, fmt.Sprint(port))); err == nil {
				t.Errorf("%s: connect to %s:%d succeeded, want refused", c.name, c.dst, port)
			}
		}, "--netns", p.B, "-p", "tcp", "-s", c.src, "-d", c.dst, "-D", fmt.Sprint(port))
		if !haveReasons { // no NO_SOCKET, so no live socket check: told by tcp_v4_rcv / tcp_v6_rcv and the reset
			d.reasonless(t, "NO_SOCKET", map[string]string{"ipv4": "tcp_v4_rcv", "ipv6": "tcp_v6_rcv"}[c.name], p.InoB, p.B)
			d.countersSay(t, "Tcp OutRsts +1")
			d.mustNotClaim(t, "a socket listens on the port elsewhere", "firewall", "forwarding", "no route")
			continue
		}
		f, _ := d.mustFind(t, "socket.bound_elsewhere", byCode("socket.bound_elsewhere"))
		checkFinding(t, f).eq("level", f.Level, "error").
			has("message", f.Message, fmt.Sprintf("port %d at %s", port, c.dst), net.JoinHostPort(c.listen, fmt.Sprint(port))).
			has("evidence", strings.Join(f.Evidence, "\n"), "sock_diag").
			netns(p.InoB, p.B).done(d)
		d.mustNotClaim(t, "a socket listens on the port elsewhere", "firewall", "forwarding", "no route")
	}
}

// A TCP connection to a port nobody listens on anywhere (IPv6): socket.none,
// with the live check that found no socket; no finding may say one listens.
func TestDiagCorpusTCPClosedPort6(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const port = 7209
	d := diag(t, func() { dialTCP(t, p.A, net.JoinHostPort(p.B6, fmt.Sprint(port))) },
		"--netns", p.B, "-p", "tcp", "-s", p.A6, "-d", p.B6, "-D", fmt.Sprint(port))
	if !haveReasons {
		d.reasonless(t, "NO_SOCKET", "tcp_v6_rcv", p.InoB, p.B)
		d.countersSay(t, "Tcp OutRsts +1")
		d.mustNotClaim(t, "nothing listens anywhere", "but a socket", "firewall", "forwarding", "no route")
		return
	}
	f, _ := d.mustFind(t, "socket.none", byCode("socket.none"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, fmt.Sprintf("nothing listens on tcp port %d at %s", port, p.B6)).
		has("evidence", strings.Join(f.Evidence, "\n"), "no tcp socket on port").
		netns(p.InoB, p.B).done(d)
	d.mustNotClaim(t, "nothing listens anywhere", "but a socket", "firewall", "forwarding", "no route")
}

// B ignores echo requests (net.ipv4.icmp_echo_ignore_all=1, and the IPv6
// twin). Nothing drops the request: the analysis says it was consumed in
// B and why no reply comes; nothing may claim a drop, a firewall or a
// route.
func TestDiagCorpusEchoIgnored(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	mustNS(t, p.B, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1", "net.ipv6.icmp.echo_ignore_all=1")
	for _, c := range []struct{ proto, src, dst, sysctl string }{
		{"icmp", p.A4, p.B4, "net.ipv4.icmp_echo_ignore_all=1"},
		{"icmp6", p.A6, p.B6, "net.ipv6.icmp.echo_ignore_all=1"},
	} {
		d := diag(t, func() { pingFails(t, p.A, c.dst) }, "--netns", p.B, "-p", c.proto, "-s", c.src, "-d", c.dst, "-c", "1")
		f, _ := d.mustFind(t, "icmp.echo_ignored", byCode("icmp.echo_ignored"))
		checkFinding(t, f).eq("level", f.Level, "warn").
			has("message", f.Message, "echo request was", "no reply is sent", c.sysctl).
			has("evidence", strings.Join(f.Evidence, "\n"), "live check").
			netns(p.InoB, p.B).done(d)
		d.mustNotClaim(t, "nothing dropped it", "dropped", "firewall", "no route", "forwarding")
	}
}

// attachShot attaches, on dev's ingress in namespace ns, a tiny BPF
// classifier in direct-action mode that returns TC_ACT_SHOT, named
// sbt_shot, and returns its program id. The clsact qdisc (and with it the
// filter) is deleted when the test ends.
func attachShot(t *testing.T, ns, dev string) int {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "sbt_shot", Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* TC_ACT_SHOT */), asm.Return()},
	})
	if err != nil {
		t.Fatalf("load the TC_ACT_SHOT classifier: %v", err)
	}
	defer prog.Close() // the filter holds its own reference
	info, err := prog.Info()
	if err != nil {
		t.Fatalf("program info: %v", err)
	}
	id, _ := info.ID()
	err = inNetns(t, ns, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
			Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT}, QdiscType: "clsact"}
		if err := netlink.QdiscAdd(q); err != nil {
			return fmt.Errorf("add clsact: %w", err)
		}
		f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index,
			Parent: netlink.HANDLE_MIN_INGRESS, Handle: 1, Protocol: unix.ETH_P_ALL, Priority: 1},
			Fd: prog.FD(), Name: "sbt_shot", DirectAction: true}
		if err := netlink.FilterAdd(f); err != nil {
			return fmt.Errorf("add the bpf filter: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("attach sbt_shot to %s ingress in %s: %v", dev, ns, err)
	}
	t.Cleanup(func() {
		if out, err := runCmd("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "clsact"); err != nil {
			t.Logf("cleanup: tc qdisc del dev %s clsact in %s: %v: %s", dev, ns, err, out)
		}
	})
	return int(id)
}

// A BPF classifier on B's ingress returns TC_ACT_SHOT (IPv4 and IPv6). The
// analysis says tc dropped it on ingress of B's device, and names the
// program (name, id, tag) from the live tc filters; no finding may blame
// netfilter, a firewall, routing or forwarding.
func TestDiagCorpusTCBPFIngressDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	id := attachShot(t, p.B, p.IfB)
	for _, c := range []struct{ proto, src, dst string }{{"icmp", p.A4, p.B4}, {"icmp6", p.A6, p.B6}} {
		d := diag(t, func() { pingFails(t, p.A, c.dst) }, "--netns", p.B, "-p", c.proto, "-s", c.src, "-d", c.dst)
		if !haveReasons { // no TC_INGRESS: told by the receive path that ran the classifier
			d.reasonless(t, "TC_INGRESS", "__netif_receive_skb_core", p.InoB, p.B)
			d.mustNotClaim(t, "a tc program dropped it", "netfilter", "firewall", "route", "forwarding")
			continue
		}
		f, _ := d.mustFind(t, "tc.drop", byCode("tc.drop"))
		checkFinding(t, f).eq("level", f.Level, "error").
			eq("reason", f.Reason, "TC_INGRESS").
			has("message", f.Message, fmt.Sprintf("sbt_shot (id %d, tag ", id)).
			has("advice", f.Advice, fmt.Sprintf("bpftool prog show id %d", id), p.B).
			has("evidence", strings.Join(f.Evidence, "\n"), "live check", "direct-action").
			netns(p.InoB, p.B).done(d)
		d.mustNotClaim(t, "a tc program dropped it", "netfilter", "firewall", "route", "forwarding")
	}
}

// IPv6: B forwards (net.ipv6.conf.all.forwarding=1) and has a blackhole
// route for fd00:dead::5, where A routes through B. The IPv6 route
// lookup's tracepoint (fib6_table_lookup) and the live lookup name the
// blackhole route; nothing may claim forwarding is off, a firewall or a
// neighbour failure.
func TestDiagCorpusBlackholeRoute6(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const dst = "fd00:dead::5"
	mustNS(t, p.B, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	mustNS(t, p.A, "ip", "-6", "route", "add", "fd00:dead::/64", "via", p.B6)
	mustNS(t, p.B, "ip", "-6", "route", "add", "blackhole", dst+"/128")

	d := diag(t, func() { pingFails(t, p.A, dst) }, "--netns", p.B, "-p", "icmp6", "-s", p.A6, "-d", dst)
	f, _ := d.mustFind(t, "route.blackhole", byCode("route.blackhole"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, dst).
		has("advice", f.Advice, "blackhole", p.B).
		netns(p.InoB, p.B).done(d)
	if _, _, ok := d.find(func(f finding) bool { return f.Probe == "fib6_table_lookup" }); !ok {
		t.Errorf("no finding from fib6_table_lookup (the kernel has it: skbtrail check lists it):\n%s\nevents:\n%s", d.dump(), dumpEvents(d.events))
	}
	d.mustNotClaim(t, "B forwards and has a blackhole route", "forwarding is disabled", "firewall", "ARP/ND", "netns 0 ", "(unknown)", "no route")
}

// A neighbour failure behind a router: R forwards A's ping to an address
// of its B-side link that nobody has. R drops it (NEIGH_FAILED) and tells
// A host unreachable. Forwarding is on in R: no finding may say it is off,
// nor blame a route or a firewall.
func TestDiagCorpusNeighFailedBehindRouter(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	ghost := r.RB4[:strings.LastIndex(r.RB4, ".")] + ".99"
	d := diag(t, func() {
		inNS(r.A, "ping", "-n", "-c", "1", "-W", "5", ghost)
	}, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", ghost)
	if !haveReasons {
		d.reasonless(t, "NEIGH_FAILED", "neigh_invalidate", r.InoR, r.R)
		d.mustNotClaim(t, "R forwards; its next hop does not answer", "forwarding is disabled", "ip_forward", "no route", "firewall")
		return
	}
	f, _ := d.mustFind(t, "neigh.failed", byCode("neigh.failed"))
	checkFinding(t, f).eq("level", f.Level, "error").has("advice", f.Advice, r.IfRB).
		has("message", f.Message, "the next hop "+ghost+" on "+r.IfRB).
		netns(r.InoR, r.R).done(d)
	d.mustNotClaim(t, "R forwards; its next hop does not answer", "forwarding is disabled", "ip_forward", "no route", "firewall")
}

// IPv6 forwarding off on a namespace that A routes through: B has a route
// for fd00:dead::/64 but net.ipv6.conf.all.forwarding=0, so it will not
// route A's packet. The analysis says forwarding is off (fwd.disabled,
// with the IPv6 sysctl); it must not blame a firewall or a route.
func TestDiagCorpusForwardingDisabled6(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const dst = "fd00:dead::7"
	mustNS(t, p.B, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=0")
	mustNS(t, p.A, "ip", "-6", "route", "add", "fd00:dead::/64", "via", p.B6)
	mustNS(t, p.B, "ip", "-6", "route", "add", "fd00:dead::/64", "via", p.A6)

	d := diag(t, func() { pingFails(t, p.A, dst) }, "--netns", p.B, "-p", "icmp6", "-s", p.A6, "-d", dst)
	f, _ := d.mustFind(t, "fwd.disabled", byCode("fwd.disabled"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("advice", f.Advice, "net.ipv6.conf.all.forwarding=1", p.B).
		has("evidence", strings.Join(f.Evidence, "\n"), "live check").
		netns(p.InoB, p.B).done(d)
	d.mustNotClaim(t, "B has a route but does not forward", "firewall", "blackhole", "prohibit", "ARP/ND", "net.ipv4")
}

// PMTU: R's link to B has MTU 1280 and A pings B with 1428-byte packets
// that must not be fragmented. R drops them (PKT_TOO_BIG) and answers
// "fragmentation needed"; the analysis names R's device and its MTU. No
// finding may blame forwarding, a firewall or a route's absence.
func TestDiagCorpusPMTU(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	mustNS(t, r.R, "ip", "link", "set", r.IfRB, "mtu", "1280")
	mustNS(t, r.B, "ip", "link", "set", r.IfB, "mtu", "1280")

	d := diag(t, func() {
		inNS(r.A, "ping", "-n", "-c", "1", "-W", "1", "-M", "do", "-s", "1400", r.B4)
	}, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	if !haveReasons { // no PKT_TOO_BIG: told by ip_forward (the function, not the sysctl) and FragFails
		d.reasonless(t, "PKT_TOO_BIG", "ip_forward", r.InoR, r.R)
		d.countersSay(t, "Ip FragFails +1")
		d.mustNotClaim(t, "the packet is too big for R's way out", "forwarding is disabled", "ip_forward=", "firewall rule", "netfilter", "no route")
		return
	}
	f, _ := d.mustFind(t, "mtu.too_big", byCode("mtu.too_big"))
	checkFinding(t, f).eq("level", f.Level, "error").
		eq("reason", f.Reason, "PKT_TOO_BIG").
		has("message", f.Message, "1428 bytes", r.IfRB, "MTU is 1280").
		netns(r.InoR, r.R).done(d)
	d.mustNotClaim(t, "the packet is too big for R's way out", "forwarding is disabled", "ip_forward", "firewall rule", "netfilter", "no route")
}

// A TCP server listens on the port in another namespace (A, on all
// addresses), not in B where the client's SYN arrives: the analysis says
// so, naming A.
func TestDiagCorpusTCPListensInOtherNetns(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const port = 7301
	listenTCP(t, p.A, net.JoinHostPort("0.0.0.0", fmt.Sprint(port)))
	d := diag(t, func() { dialTCP(t, p.A, net.JoinHostPort(p.B4, fmt.Sprint(port))) },
		"--netns", p.B, "-p", "tcp", "-s", p.A4, "-d", p.B4, "-D", fmt.Sprint(port))
	if !haveReasons {
		d.reasonless(t, "NO_SOCKET", "tcp_v4_rcv", p.InoB, p.B)
		d.countersSay(t, "Tcp OutRsts +1")
		d.mustNotClaim(t, "the server runs in another namespace", "firewall", "forwarding", "no route")
		return
	}
	f, _ := d.mustFind(t, "socket.bound_elsewhere", byCode("socket.bound_elsewhere"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, fmt.Sprintf(":%d in netns %d", port, p.InoA), p.A). // Go listens on [::] for 0.0.0.0
		netns(p.InoB, p.B).done(d)
	d.mustNotClaim(t, "the server runs in another namespace", "firewall", "forwarding", "no route")
}

// UDP to a closed port over IPv6: NO_SOCKET in B, with the live check;
// nothing may claim a socket listens or a firewall.
func TestDiagCorpusUDPClosedPort6(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const port = 9419
	d := diag(t, func() { floodUDP(t, p.A, p.B6, port, 1) },
		"--netns", p.B, "-p", "udp", "-s", p.A6, "-d", p.B6, "-D", fmt.Sprint(port))
	if !haveReasons {
		d.reasonless(t, "NO_SOCKET", "__udp6_lib_rcv", p.InoB, p.B)
		d.countersSay(t, "Udp6 NoPorts +1")
		d.mustNotClaim(t, "nothing is bound anywhere", "but a socket", "firewall", "forwarding", "no route")
		return
	}
	f, _ := d.mustFind(t, "socket.none", byCode("socket.none"))
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, fmt.Sprintf("udp port %d at %s", port, p.B6)).
		netns(p.InoB, p.B).done(d)
	d.mustNotClaim(t, "nothing is bound anywhere", "but a socket", "firewall", "forwarding", "no route")
}
