package e2e

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exitWithin bounds how long a skbtrail that should stop by itself (count
// reached, duration over, signal) may take to exit.
const exitWithin = 20 * time.Second

// echoRequest matches IPv4 echo requests from src to dst.
func echoRequest(src, dst string) func(event) bool {
	return func(e event) bool {
		return e.icmpType() == 8 && sameAddr(e.Saddr, src) && sameAddr(e.Daddr, dst)
	}
}

// checkOnlyFlow fails for events that carry addresses other than src > dst:
// the filter let through something it should not have. An unspecified
// source (a route lookup made before the source address is chosen) counts
// as src.
func checkOnlyFlow(t *testing.T, evs []event, src, dst, filter string) {
	t.Helper()
	for _, e := range evs {
		if e.Saddr == "" && e.Daddr == "" {
			continue
		}
		if !(sameAddr(e.Saddr, src) || unspecified(e.Saddr)) || !sameAddr(e.Daddr, dst) {
			t.Errorf("filter %q let through an event of another flow: %s\n  %s", filter, e, e.line)
		}
	}
}

// Scenario 1: a ping between two namespaces. The echo request's story must
// show it leave A on A's veth, arrive in B, and be consumed there, with no
// drop.
func TestPingStory(t *testing.T) {
	needBinary(t)
	t.Parallel()
	for _, mode := range []struct {
		name string
		warm bool // resolve the neighbor before tracing
		args []string
	}{
		// -c 1: the first packet shown must be the echo request. With a cold
		// neighbor cache the kernel first frees a clone of it (sent along
		// with the ARP request), which has a story of its own.
		{"count", true, []string{"-c", "1"}},
		// --duration with a cold neighbor cache: the clone's story may be
		// shown too, the echo request's must be there.
		{"duration", false, []string{"--duration", durArg(3 * time.Second)}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t)
			if mode.warm {
				p.warm(t)
			}
			args := append([]string{"--json", "-p", "icmp", "-s", p.A4, "-d", p.B4}, mode.args...)
			tr := run(t, args...)
			mustPing(t, p.A, p.B4)
			if !mode.warm {
				tr.inWindow(3 * time.Second)
			}
			stdout, stderr := tr.waitOK(exitWithin)
			evs := parseJSON(t, stdout, stderr)
			checkOnlyFlow(t, evs, p.A4, p.B4, strings.Join(args, " "))
			checkPingStory(t, p, evs, tr.report())
			if skbs := skbsOf(evs, func(event) bool { return true }); mode.warm && len(skbs) != 1 {
				t.Errorf("-c 1 showed %d packets (skbs %v), want 1:\n%s", len(skbs), skbs, dumpEvents(evs))
			}
		})
	}
}

func checkPingStory(t *testing.T, p *pair, evs []event, report string) {
	t.Helper()
	isReq := echoRequest(p.A4, p.B4)
	skbs := skbsOf(evs, isReq)
	if len(skbs) == 0 {
		t.Fatalf("no echo request event (icmp_type 8, %s > %s) in the output; events:\n%s%s", p.A4, p.B4, dumpEvents(evs), report)
	}
	for _, e := range evs {
		if isReq(e) && (e.Family != "ipv4" || e.Proto != "icmp") {
			t.Errorf("echo request event with family %q proto %q, want ipv4 icmp: %s", e.Family, e.Proto, e.line)
		}
	}
	groups := bySkb(evs)
	var problems []string
	for _, skb := range skbs {
		var tx, rx, consumed bool
		var drops []string
		for _, e := range groups[skb] {
			switch {
			case isXmit(e.Probe) && e.Netns == p.InoA && e.Ifname == p.IfA:
				tx = true
			case e.Probe == "netif_receive_skb" && e.Netns == p.InoB:
				rx = true
			case e.Probe == "consume_skb":
				consumed = true
			case e.Probe == "kfree_skb":
				drops = append(drops, e.String())
			}
		}
		if tx && rx && consumed && len(drops) == 0 {
			return
		}
		var missing []string
		if !tx {
			missing = append(missing, fmt.Sprintf("no net_dev_queue/net_dev_start_xmit/net_dev_xmit with netns %d (A) and ifname %s", p.InoA, p.IfA))
		}
		if !rx {
			missing = append(missing, fmt.Sprintf("no netif_receive_skb with netns %d (B)", p.InoB))
		}
		if !consumed {
			missing = append(missing, "no consume_skb")
		}
		for _, d := range drops {
			missing = append(missing, "dropped: "+d)
		}
		problems = append(problems, fmt.Sprintf("skb %s: %s", skb, strings.Join(missing, "; ")))
	}
	t.Fatalf("the echo request's story is wrong:\n  %s\nevents:\n%s%s", strings.Join(problems, "\n  "), dumpEvents(evs), report)
}

// Scenario 2: an nftables rule in B drops echo requests at the input hook.
// skbtrail must report the drop in B with reason NETFILTER_DROP.
func TestNftablesDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t) // see TestPingStory/count
	addDropEchoRule(t, p.B)
	args := []string{"--json", "-p", "icmp", "-s", p.A4, "-d", p.B4, "-c", "1"}
	tr := run(t, args...)
	if ok, out := ping(p.A, p.B4); ok {
		t.Fatalf("ping from A to B succeeded despite the nft drop rule in B:\n%s", out)
	}
	stdout, stderr := tr.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)
	checkOnlyFlow(t, evs, p.A4, p.B4, strings.Join(args, " "))

	isReq := echoRequest(p.A4, p.B4)
	reqs := skbsOf(evs, isReq)
	var drops []event
	for _, e := range evs {
		if e.Probe == "kfree_skb" && (isReq(e) || slices.Contains(reqs, e.Skb)) {
			drops = append(drops, e)
		}
	}
	if len(drops) == 0 {
		t.Fatalf("no kfree_skb event for the dropped echo request; events:\n%s%s", dumpEvents(evs), tr.report())
	}
	saysReasons(t, tr.name(), stderr)
	for _, d := range drops {
		if dropIs(d, "NETFILTER_DROP", "nf_hook_slow") && d.Netns == p.InoB {
			if d.Location == "" {
				t.Errorf("drop event without a location: %s", d.line)
			}
			return
		}
	}
	t.Fatalf("no kfree_skb with reason NETFILTER_DROP (before 5.17: none, in nf_hook_slow) in netns %d (B) for the echo request; drops seen:\n%s\nall events:\n%s%s",
		p.InoB, dumpEvents(drops), dumpEvents(evs), tr.report())
}

// dropIs says whether a kfree_skb event has the reason, or, on a kernel
// without drop reasons (before 5.17), no reason and a location in fn.
func dropIs(e event, reason, fn string) bool {
	if haveReasons {
		return e.Reason == reason
	}
	return e.Reason == "" && (strings.HasPrefix(e.Location, fn+"+") || strings.HasPrefix(e.Location, fn+"."))
}

// Scenario 3: a TCP SYN to a port nobody listens on. B answers with a reset
// (tcp_send_reset, on 6.10+) and drops the SYN with reason NO_SOCKET.
func TestTCPClosedPort(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	args := []string{"--json", "-p", "tcp", "-D", "81", "-d", p.B4, "--duration", durArg(3 * time.Second)}
	tr := run(t, args...)
	if out, err := tcpConnect(p.A, p.B4, 81); err == nil {
		t.Fatalf("TCP connect to %s:81 succeeded, want connection refused: %s", p.B4, out)
	}
	tr.inWindow(3 * time.Second)
	stdout, stderr := tr.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)

	isSyn := func(e event) bool {
		return e.Proto == "tcp" && e.TCPFlags == "S" && e.Dport == 81 && sameAddr(e.Saddr, p.A4) && sameAddr(e.Daddr, p.B4)
	}
	syns := skbsOf(evs, isSyn)
	if len(syns) == 0 {
		t.Fatalf("no event for the SYN (tcp, tcp_flags \"S\", %s > %s:81); events:\n%s%s", p.A4, p.B4, dumpEvents(evs), tr.report())
	}
	for _, e := range evs {
		// Fields a probe does not know (route lookups: no protocol or port
		// yet) may be empty; those it reports must match the filter.
		if e.Family != "" && ((e.Proto != "" && e.Proto != "tcp") || (e.Dport != 0 && e.Dport != 81) || !sameAddr(e.Daddr, p.B4)) {
			t.Errorf("filter %q let through: %s", strings.Join(args, " "), e)
		}
	}
	forSyn := func(e event) bool { return isSyn(e) || slices.Contains(syns, e.Skb) }

	var reset, noSocket bool
	var drops []event
	for _, e := range evs {
		if !forSyn(e) {
			continue
		}
		switch e.Probe {
		case "tcp_send_reset":
			reset = true
		case "kfree_skb":
			drops = append(drops, e)
			if dropIs(e, "NO_SOCKET", "tcp_v4_rcv") && e.Netns == p.InoB {
				noSocket = true
			}
		}
	}
	// Before 6.10 (commit 19822a980e19) the tracepoint fired only for
	// resets sent on behalf of a full socket, not for a SYN to no socket.
	if !reset && kernelAtLeast(6, 10) {
		t.Errorf("no tcp_send_reset event for the SYN")
	}
	saysReasons(t, tr.name(), stderr)
	if !noSocket {
		t.Errorf("no kfree_skb with reason NO_SOCKET (before 5.17: none, in tcp_v4_rcv) in netns %d (B) for the SYN; drops of it:\n%s", p.InoB, dumpEvents(drops))
	}
	if t.Failed() {
		t.Fatalf("events:\n%s%s", dumpEvents(evs), tr.report())
	}
}

// Scenario 4: an IPv6 ping, matched by --addr and -p icmp6.
func TestPing6(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	args := []string{"--json", "-p", "icmp6", "--addr", p.B6, "--duration", durArg(3 * time.Second)}
	tr := run(t, args...)
	mustPing(t, p.A, p.B6)
	tr.inWindow(3 * time.Second)
	stdout, stderr := tr.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)

	for _, e := range evs {
		if e.Family != "" && (e.Family != "ipv6" || !(sameAddr(e.Saddr, p.B6) || sameAddr(e.Daddr, p.B6))) {
			t.Errorf("filter %q let through: %s", strings.Join(args, " "), e)
		}
	}
	var inA, inB bool
	for _, e := range evs {
		if e.Family == "ipv6" && e.icmpType() == 128 && sameAddr(e.Saddr, p.A6) && sameAddr(e.Daddr, p.B6) {
			inA = inA || e.Netns == p.InoA
			inB = inB || e.Netns == p.InoB
		}
	}
	if !inA || !inB {
		t.Fatalf("want echo request events (family ipv6, icmp_type 128, %s > %s) in netns %d (A) and %d (B): seen in A %v, in B %v; events:\n%s%s",
			p.A6, p.B6, p.InoA, p.InoB, inA, inB, dumpEvents(evs), tr.report())
	}
}

// Scenario 5: filters that exclude the traffic show nothing, while a filter
// that matches it (run at the same time, the control) shows the ping.
func TestFilterExcludes(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	other := fmt.Sprintf("198.%d.%d.3", 18+p.N/256, p.N%256) // in the pair's subnet, never used
	ps := runAll(t,
		[]string{"--json", "-p", "icmp", "-d", p.B4, "--duration", durArg(5 * time.Second)},
		[]string{"--json", "-p", "udp", "--dport", "9", "--addr", p.B4, "--duration", durArg(5 * time.Second)},
		[]string{"--json", "-p", "icmp", "-s", other, "--duration", durArg(5 * time.Second)},
	)
	control, excluding := ps[0], ps[1:]
	mustPing(t, p.A, p.B4)
	for _, x := range ps {
		x.inWindow(5 * time.Second)
	}

	stdout, stderr := control.waitOK(exitWithin)
	if evs := parseJSON(t, stdout, stderr); len(skbsOf(evs, echoRequest(p.A4, p.B4))) == 0 {
		t.Fatalf("control run %s saw no echo request, so the exclusion checks would prove nothing; events:\n%s%s",
			control.name(), dumpEvents(evs), control.report())
	}
	for _, x := range excluding {
		stdout, stderr := x.waitOK(exitWithin)
		if evs := parseJSON(t, stdout, stderr); len(evs) != 0 {
			t.Errorf("%s: %d events, want none:\n%s%s", x.name(), len(evs), dumpEvents(evs), x.report())
		}
		// Nothing shown: it says how many packets it saw, none matching.
		if !regexp.MustCompile(`saw [1-9][0-9,]* packets, none matched `).MatchString(stderr) {
			t.Errorf("%s showed nothing and did not say what it saw:\n%s", x.name(), x.report())
		}
	}
}

// Scenario 8: text outputs. --basic, the default lifecycle view and --detail
// all name the probes and the addresses; --detail names the process. No
// --duration here: three starts may take longer than it on a slow machine.
func TestTextOutput(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	filter := []string{"-p", "icmp", "-s", p.A4, "-d", p.B4}
	modes := []struct {
		name string
		flag []string
		want []string
	}{
		{"basic", []string{"--basic"}, nil},
		{"default", nil, nil},
		{"detail", []string{"--detail"}, []string{"ping"}},
	}
	var argss [][]string
	for _, m := range modes {
		argss = append(argss, append(slices.Clone(m.flag), filter...))
	}
	procs := runAll(t, argss...)
	mustPing(t, p.A, p.B4)
	for i, m := range modes {
		// Wait for the output, then stop the trace (SIGINT, as a user would).
		procs[i].waitOutput(10*time.Second, append([]string{p.A4, p.B4, "netif_receive_skb"}, m.want...)...)
		procs[i].signal(syscall.SIGINT)
		stdout, _ := procs[i].waitOK(exitWithin)
		if !strings.Contains(stdout, "net_dev_queue") && !strings.Contains(stdout, "net_dev_start_xmit") && !strings.Contains(stdout, "net_dev_xmit") {
			t.Errorf("%s output: no transmit probe (net_dev_queue/net_dev_start_xmit/net_dev_xmit) in stdout:\n%s", m.name, procs[i].report())
		}
		if strings.HasPrefix(strings.TrimSpace(stdout), "{") {
			t.Errorf("%s output looks like JSON:\n%s", m.name, procs[i].report())
		}
	}
}

// Scenario 9: SIGINT and SIGTERM stop a trace with exit status 0.
func TestSignalStops(t *testing.T) {
	needBinary(t)
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			n := allocSubnet(t)
			dst := fmt.Sprintf("198.%d.%d.2", 18+n/256, n%256) // a filter only: no traffic is sent
			tr := run(t, "-p", "icmp", "-d", dst)
			tr.signal(sig)
			_, stderr, code := tr.wait(exitWithin)
			if code != 0 {
				t.Errorf("exit status %d after %v, want 0:\n%s", code, sig, tr.report())
			}
			if !strings.Contains(stderr, beginMarker) {
				t.Errorf("no %q on stderr:\n%s", beginMarker, tr.report())
			}
		})
	}
}

// Scenario 10: --netns (by name, inode or path) and --dev select where
// packets are picked up. A packet is remembered once it matched, so its
// later events may be elsewhere; but each packet's first event, and every
// event that has no skb, must be in the selected namespace (and device).
func TestNetnsDevFilters(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	cases := []struct {
		name  string
		args  []string
		netns uint64
		dev   string
	}{
		{"name", []string{"--netns", p.B}, p.InoB, ""},
		{"inode", []string{"--netns", fmt.Sprint(p.InoA)}, p.InoA, ""},
		{"path+dev", []string{"--netns", "/run/netns/" + p.A, "--dev", p.IfA}, p.InoA, p.IfA},
	}
	var argss [][]string
	for _, c := range cases {
		argss = append(argss, append([]string{"--json", "-p", "icmp", "--addr", p.B4, "--duration", durArg(5 * time.Second)}, c.args...))
	}
	procs := runAll(t, argss...)
	mustPing(t, p.A, p.B4)
	for _, x := range procs {
		x.inWindow(5 * time.Second)
	}
	for i, c := range cases {
		stdout, stderr := procs[i].waitOK(exitWithin)
		evs := parseJSON(t, stdout, stderr)
		if len(skbsOf(evs, echoRequest(p.A4, p.B4))) == 0 {
			t.Errorf("%s: no echo request %s > %s shown; events:\n%s%s", procs[i].name(), p.A4, p.B4, dumpEvents(evs), procs[i].report())
			continue
		}
		seen := map[string]bool{}
		for _, e := range evs {
			first := !e.hasSkb() || !seen[e.Skb]
			seen[e.Skb] = true
			if !first {
				continue
			}
			if e.Netns != c.netns || (c.dev != "" && e.Ifname != c.dev) {
				t.Errorf("%s: a packet picked up outside netns %d %s: %s", procs[i].name(), c.netns, c.dev, e)
			}
		}
	}
}

// TestTraceDNAT: a packet that starts to match after a probe said no. B
// DNATs TCP to its address and port 80 to another of its addresses, port
// 8080, where a server listens; the filter names only the post-NAT
// address. The SYN's first probes in B see the pre-NAT destination and
// reject it; after the DNAT its skb must be looked at again and traced
// (the probes' "no" memory is keyed by the conntrack entry, which
// netfilter attaches before NAT rewrites the headers).
func TestTraceDNAT(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	post := fmt.Sprintf("198.%d.%d.7", 18+p.N/256, p.N%256)
	mustRun(t, "ip", "-n", p.B, "addr", "add", post+"/32", "dev", "lo")
	mustNS(t, p.B, "nft", "add", "table", "ip", "nat")
	mustNS(t, p.B, "nft", "add", "chain", "ip", "nat", "prerouting", "{ type nat hook prerouting priority -100; }")
	mustNS(t, p.B, "nft", "add", "rule", "ip", "nat", "prerouting", "ip", "daddr", p.B4, "tcp", "dport", "80", "dnat", "to", post+":8080")
	listenTCP(t, p.B, net.JoinHostPort(post, "8080"))

	x := run(t, "--json", "-p", "tcp", "-d", post, "--duration", durArg(5*time.Second))
	if err := dialTCP(t, p.A, net.JoinHostPort(p.B4, "80")); err != nil {
		t.Fatalf("connect to %s:80 through the DNAT: %v", p.B4, err)
	}
	x.inWindow(5 * time.Second)
	stdout, stderr := x.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)
	var nated []event
	for _, e := range evs {
		if e.hasSkb() && sameAddr(e.Daddr, post) && e.Dport == 8080 {
			nated = append(nated, e)
		}
	}
	if len(nated) == 0 {
		t.Fatalf("no event of a packet to %s:8080 after the DNAT in B; events:\n%s%s", post, dumpEvents(evs), x.report())
	}
	for _, e := range evs {
		// Before the DNAT the packet did not match: its earlier
		// events (in A, and B's receive) are not shown.
		if sameAddr(e.Daddr, p.B4) && e.Dport == 80 {
			t.Errorf("a pre-NAT event passed the filter: %s", e)
		}
	}
}

// TestTraceRateLimit: --rate-limit caps the events the probes write, and
// the ones over it are counted and reported, never silently dropped.
func TestTraceRateLimit(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const limit = 5
	x := run(t, "--json", "--basic", "--rate-limit", fmt.Sprint(limit), "-p", "icmp", "-d", p.B4, "--duration", durArg(4*time.Second))
	if out, err := inNS(p.A, "ping", "-q", "-c", "40", "-i", "0.01", p.B4); err != nil {
		t.Fatalf("ping flood: %v\n%s", err, out)
	}
	x.inWindow(4 * time.Second)
	stdout, stderr := x.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)
	// 40 pings give ~10 events each; the windows are ~1.07 s, so a run of
	// 4 s sees at most 5 windows of `limit` events.
	if len(evs) == 0 || len(evs) > 5*limit {
		t.Errorf("%d events with --rate-limit %d over 4 s, want 1..%d:\n%s", len(evs), limit, 5*limit, x.report())
	}
	m := regexp.MustCompile(`([0-9]+) events not written: over --rate-limit 5 per second`).FindStringSubmatch(stderr)
	if m == nil || m[1] == "0" {
		t.Fatalf("no count of the events over the limit on stderr:\n%s", x.report())
	}
}
