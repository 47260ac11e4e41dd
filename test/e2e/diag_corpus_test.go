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

	d := diag(t, func() { pingFails(t, b.A, b.B4) }, "--netns", b.S, "-p", "icmp", "-s", b.A4, "-d", b.B4)
	f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	c := checkFinding(t, f).eq("level", f.Level, "error").netns(b.InoS, b.S)
	if f.Table != "" { // named by the rule trace, where it saw the packet
		c.eq("family", f.Family, "bridge").eq("table", f.Table, "sbtbr")
	}
	if f.Hook != "" {
		c.match("hook", f.Hook, regexp.MustCompile(`^bridge`))
	}
	c.done(d)
	d.mustNotClaim(t, "the packet was bridged", "forwarding", "ip_forward", "route", "hook ip ")
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
	f, _ := d.mustFind(t, "with reason NEIGH_FAILED", byReason("NEIGH_FAILED"))
	checkFinding(t, f).eq("level", f.Level, "error").has("message", f.Message, "neighbour").netns(p.InoA, p.A).done(d)
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
	f, _ := d.mustFind(t, "about the ICMP error R sends", func(f finding) bool { return f.Probe == "icmp_send" })
	checkFinding(t, f).eq("level", f.Level, "error").
		has("message", f.Message, "prohibit").
		has("advice", f.Advice, "ip rule", r.R).
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
	f, _ := d.mustFind(t, "about the blackhole route", func(f finding) bool { return strings.Contains(f.Message, "blackhole") })
	checkFinding(t, f).eq("level", f.Level, "error").has("advice", f.Advice, r.R).netns(r.InoR, r.R).done(d)
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
	f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	c := checkFinding(t, f).eq("level", f.Level, "error").netns(p.InoB, p.B)
	if f.Table != "" {
		c.eq("family", f.Family, "ip6").has("advice", f.Advice, "ip6tables -t filter -S INPUT")
	}
	c.done(d)
	d.mustNotClaim(t, "it is an ip6tables rule", "`iptables ", "ip_forward", "forwarding is disabled")
}

// keep net imported for scenarios with sockets.
var _ = net.JoinHostPort
