package e2e

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The --diag scenarios: each makes a packet die (or change) in a way a user
// meets, and checks that the analysis says what they need to fix it.
//
// Each run is scoped with --netns to the namespace where the packet's fate
// is decided: a --diag run places netfilter observers and an nftables
// trace table in every namespace it traces, and without --netns that is
// every namespace under /run/netns, which parallel tests fill. Worse, the
// kernel takes only one BPF netfilter program per hook and priority, so
// a second run observing the same namespace at the same time gets EBUSY
// and diagnoses without observers (no hook, no blamed hook function).
// Only the SIGKILL scenario, which runs alone, traces everything.

// nftHandle returns the handle of the rule in `nft -a list chain` output
// whose text contains rule.
func nftHandle(t *testing.T, ns, family, table, chain, rule string) int {
	t.Helper()
	out := mustNS(t, ns, "nft", "-a", "list", "chain", family, table, chain)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, rule) {
			if m := regexp.MustCompile(`# handle (\d+)`).FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				return n
			}
		}
	}
	t.Fatalf("no rule %q with a handle in netns %s:\n%s", rule, ns, out)
	return 0
}

// pingFails sends one echo request and fails the test if it is answered.
func pingFails(t *testing.T, ns, addr string) {
	t.Helper()
	if ok, out := ping(ns, addr); ok {
		t.Fatalf("ping from %s to %s was answered, want it lost:\n%s", ns, addr, out)
	}
}

// Scenario 1: an nftables rule in B drops echo requests at the input hook.
// The analysis names the rule as nft prints it, its table, chain and hook,
// and the command that deletes it; the text output says the same.
func TestDiagNftablesInputDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	addDropEchoRule(t, p.B)
	handle := nftHandle(t, p.B, "inet", "sbt", "input", "echo-request drop")

	args := []string{"--netns", p.B, "-p", "icmp", "-s", p.A4, "-d", p.B4}
	r := diag(t, func() { pingFails(t, p.A, p.B4) }, args...)
	if !haveReasons {
		// Before 5.17 no reason, before 5.12 no rule trace, before 6.4
		// no observers: the drop is told by nf_hook_slow, where
		// netfilter's verdict was carried out.
		f, _ := r.mustFindDrop(t, "NETFILTER_DROP", "nf_hook_slow")
		checkFinding(t, f).unexplained("nf_hook_slow").netns(p.InoB, p.B).done(r)
		return
	}
	f, a := r.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	obs := observed(t, "skbtrail --diag", r.stderr)
	c := checkFinding(t, f).
		eq("level", f.Level, "error").
		eq("family", f.Family, "inet").
		eq("table", f.Table, "sbt").
		eq("chain", f.Chain, "input").
		eq("rule", f.Rule, "icmp type echo-request drop").
		has("message", f.Message, "icmp type echo-request drop").
		has("advice", f.Advice, fmt.Sprintf("nft delete rule inet sbt input handle %d", handle), p.B).
		match("location", f.Location, regexp.MustCompile(`^nft_do_chain\+0x`)).
		netns(p.InoB, p.B)
	if obs { // the hook and the hook function come from the observers
		c.eq("hook", f.Hook, "ip input").has("blamed", f.Blamed, "sbt")
	}
	c.done(r)
	if a.Level != "error" {
		t.Errorf("analysis level %q, want error:\n%s", a.Level, r.dump())
	}

	// The same in text, for a second echo request. Not at the same time:
	// two runs cannot both observe the same namespace's netfilter hooks
	// (the kernel takes one BPF program per hook priority).
	tr := run(t, append([]string{"--diag"}, args...)...)
	pingFails(t, p.A, p.B4)
	text, textErr := tr.waitOK(exitWithin)
	wants := []string{
		"ANALYSIS RESULT",
		"ERROR",
		"reason:   NETFILTER_DROP",
		"table inet sbt, chain input, rule icmp type echo-request drop",
		fmt.Sprintf("advice:   delete or change it: `nft delete rule inet sbt input handle %d`", handle),
	}
	if observed(t, tr.name(), textErr) {
		wants = append(wants, "netfilter: hook ip input")
	}
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("text output has no %q:\n%s", want, describeOutput(text, textErr))
		}
	}
}

// Scenario 2: R forwards between A and B, and an iptables rule (iptables-nft)
// in R's FORWARD chain drops ICMP. The analysis names table ip filter, chain
// FORWARD and the forward hook, in R, and says how to list the rule.
func TestDiagIptablesForwardDrop(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)
	mustPing(t, r.A, r.B4)
	mustNS(t, r.R, "iptables", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")

	d := diag(t, func() { pingFails(t, r.A, r.B4) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	if !haveReasons { // see TestDiagNftablesInputDrop
		f, _ := d.mustFindDrop(t, "NETFILTER_DROP", "nf_hook_slow")
		checkFinding(t, f).unexplained("nf_hook_slow").netns(r.InoR, r.R).done(d)
		return
	}
	f, _ := d.mustFind(t, "with reason NETFILTER_DROP", byReason("NETFILTER_DROP"))
	c := checkFinding(t, f).
		eq("level", f.Level, "error").
		eq("family", f.Family, "ip").
		eq("table", f.Table, "filter").
		eq("chain", f.Chain, "FORWARD").
		has("rule", f.Rule, "drop").
		has("advice", f.Advice, "iptables -t filter -S FORWARD", r.R).
		netns(r.InoR, r.R)
	if observed(t, "skbtrail --diag", d.stderr) {
		c.eq("hook", f.Hook, "ip forward")
	}
	c.done(d)
}

// Scenario 3: R forwards, but has no route to where A sends the packet.
// This kernel drops it in ip_error with IP_INNOROUTES and answers with an
// ICMP net unreachable; both findings point at the missing route.
func TestDiagNoRoute(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, true)

	d := diag(t, func() { pingFails(t, r.A, r.Unrouted) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.Unrouted)
	f, _ := d.mustFind(t, "about the drop (kfree_skb)", func(f finding) bool { return f.Probe == "kfree_skb" })
	c := checkFinding(t, f).
		match("location", f.Location, regexp.MustCompile(`^ip_error\+0x`)).
		netns(r.InoR, r.R)
	if haveReasons {
		c.eq("level", f.Level, "error").
			eq("reason", f.Reason, "IP_INNOROUTES").
			has("message", f.Message, "no route").
			has("advice", f.Advice, "add a route to "+r.Unrouted, r.R)
	} else {
		// No reason before 5.17: the drop is told by where it happened,
		// the routing decision, and the live lookup names the cause.
		c.eq("reason", f.Reason, "").routeRefused(r.Unrouted, r.R)
	}
	c.done(d)
	if !haveReasons {
		f, _ = d.mustFind(t, "route.none (the live route lookup)", byCode("route.none"))
		checkFinding(t, f).
			eq("level", f.Level, "error").
			has("message", f.Message, "has no route to "+r.Unrouted, "the live lookup finds none").
			has("advice", f.Advice, "add a route to "+r.Unrouted, r.R).
			has("evidence", strings.Join(f.Evidence, "\n"), "live check", "ip route get "+r.Unrouted).
			netns(r.InoR, r.R).
			done(d)
	}
	d.mustNotClaim(t, "R forwards and has no route", "forwarding is disabled", "ip_forward=1`", "firewall", "blackhole", "prohibit")
	if !sawICMPSend(t, d) {
		return
	}
	f, _ = d.mustFind(t, "about the ICMP error R sends", func(f finding) bool { return f.Probe == "icmp_send" })
	checkFinding(t, f).
		eq("level", f.Level, "error").
		has("message", f.Message, "net unreachable", "type 3 code 0").
		has("advice", f.Advice, "ip route get "+r.Unrouted).
		netns(r.InoR, r.R).
		done(d)
}

// Scenario 4: R does not forward (net.ipv4.ip_forward=0). This kernel drops
// the packet in ip_error with IP_INADDRERRORS and sends nothing back; the
// analysis says forwarding is off and how to turn it on.
func TestDiagForwardingDisabled(t *testing.T) {
	needBinary(t)
	t.Parallel()
	r := newRouter(t)
	r.forward(t, false)

	d := diag(t, func() { pingFails(t, r.A, r.B4) }, "--netns", r.R, "-p", "icmp", "-s", r.A4, "-d", r.B4)
	f, _ := d.mustFind(t, `"forwarding is disabled"`, func(f finding) bool { return strings.Contains(f.Message, "forwarding is disabled") })
	checkFinding(t, f).
		eq("level", f.Level, "error").
		has("message", f.Message, r.B4).
		has("advice", f.Advice, "sysctl -w net.ipv4.ip_forward=1", r.R).
		netns(r.InoR, r.R).
		done(d)
	f, _ = d.mustFindDrop(t, "IP_INADDRERRORS", "ip_error")
	c := checkFinding(t, f).
		match("location", f.Location, regexp.MustCompile(`^ip_error\+0x`)).
		netns(r.InoR, r.R)
	if haveReasons {
		c.eq("level", f.Level, "error").has("advice", f.Advice, "ip route get "+r.B4)
	} else {
		// Told by the routing decision; the fwd.disabled finding above,
		// from the live sysctl, names the cause.
		c.routeRefused(r.B4, r.R)
	}
	c.done(d)
	d.mustNotClaim(t, "R is a router with forwarding off", "firewall", "netfilter", "bridge", "blackhole", "prohibit")
}

// Scenario 5: a UDP datagram to a port nobody listens on. B drops it
// (NO_SOCKET), answers with an ICMP port unreachable, and Udp NoPorts moves.
func TestDiagUDPClosedPort(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const port = 9999

	d := diag(t, func() { floodUDP(t, p.A, p.B4, port, 1) },
		"--netns", p.B, "-p", "udp", "-s", p.A4, "-d", p.B4, "-D", strconv.Itoa(port))
	f, a := d.mustFindDrop(t, "NO_SOCKET", "__udp4_lib_rcv")
	c := checkFinding(t, f).
		match("location", f.Location, regexp.MustCompile(`^__udp4_lib_rcv\+0x`)).
		netns(p.InoB, p.B)
	if haveReasons {
		c.eq("level", f.Level, "error").
			has("message", f.Message, fmt.Sprintf("udp port %d at %s", port, p.B4)).
			has("advice", f.Advice, "ss -lntup", p.B)
	} else {
		c.unexplained("__udp4_lib_rcv")
	}
	c.done(d)
	var icmp, counters *finding
	for i := range a.Findings {
		switch g := &a.Findings[i]; {
		case g.Probe == "icmp_send":
			icmp = g
		case strings.Contains(g.Message, "counters"):
			counters = g
		}
	}
	if !sawICMPSend(t, d) {
		// checked by sawICMPSend
	} else if icmp == nil {
		t.Errorf("no icmp_send finding in the analysis of the dropped datagram:\n%s", d.dump())
	} else {
		checkFinding(t, *icmp).
			eq("level", icmp.Level, "warn").
			has("message", icmp.Message, "port unreachable", "type 3 code 3").
			has("advice", icmp.Advice, fmt.Sprintf("udp port %d at %s", port, p.B4)).
			netns(p.InoB, p.B).
			done(d)
	}
	if counters == nil {
		t.Errorf("no counters finding in the analysis of the dropped datagram:\n%s", d.dump())
	} else if details := strings.Join(counters.Evidence, "\n"); !strings.Contains(details, "Udp NoPorts +1 in netns "+strconv.FormatUint(p.InoB, 10)) {
		t.Errorf("the counters finding does not cite Udp NoPorts +1 in B (%d):\n%s", p.InoB, details)
	}
}

// Scenario 6: B DNATs TCP port 80 to 8080 (nftables, prerouting), where a
// server listens. The analysis of the SYN reports destination NAT with
// both forms of the destination.
func TestDiagDNAT(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	mustNS(t, p.B, "nft", "add", "table", "ip", "nat")
	mustNS(t, p.B, "nft", "add", "chain", "ip", "nat", "prerouting", "{ type nat hook prerouting priority -100; }")
	mustNS(t, p.B, "nft", "add", "rule", "ip", "nat", "prerouting", "tcp", "dport", "80", "dnat", "to", p.B4+":8080")
	listenTCP(t, p.B, net.JoinHostPort(p.B4, "8080"))

	// -c 1: the first packet of A's connection to be freed is its SYN.
	d := diag(t, func() {
		if err := dialTCP(t, p.A, net.JoinHostPort(p.B4, "80")); err != nil {
			t.Errorf("connect to %s:80 through the DNAT: %v", p.B4, err)
		}
	}, "--netns", p.B, "-p", "tcp", "-s", p.A4, "-D", "80", "-c", "1")
	f, _ := d.mustFind(t, "about destination NAT", func(f finding) bool { return strings.Contains(f.Message, "destination NAT") })
	checkFinding(t, f).
		eq("level", f.Level, "info").
		has("message", f.Message, p.B4+":80 ", p.B4+":8080 ").
		has("advice", f.Advice, "NAT").
		netns(p.InoB, p.B).
		done(d)
}

// Scenario 7: strict reverse path filtering in B, whose route back to A's
// address leaves through another interface. B drops the packet with
// IP_RPFILTER, and the analysis names the interface and the sysctl.
func TestDiagRPFilter(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	// The way back to A's address: a second veth pair, both ends in B.
	mustRun(t, "ip", "-n", p.B, "link", "add", "rp-x", "type", "veth", "peer", "name", "rp-y")
	mustRun(t, "ip", "-n", p.B, "link", "set", "rp-x", "up")
	mustRun(t, "ip", "-n", p.B, "link", "set", "rp-y", "up")
	mustRun(t, "ip", "-n", p.B, "route", "add", p.A4+"/32", "dev", "rp-x")
	mustNS(t, p.B, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf."+p.IfB+".rp_filter=1")

	d := diag(t, func() { pingFails(t, p.A, p.B4) }, "--netns", p.B, "-p", "icmp", "-s", p.A4, "-d", p.B4)
	f, _ := d.mustFindDrop(t, "IP_RPFILTER", "ip_rcv_finish_core")
	c := checkFinding(t, f).
		match("location", f.Location, regexp.MustCompile(`^ip_rcv_finish_core`)).
		netns(p.InoB, p.B)
	if haveReasons {
		c.eq("level", f.Level, "error").
			has("message", f.Message, "reverse path filter", p.A4, p.IfB).
			has("advice", f.Advice, "net.ipv4.conf."+p.IfB+".rp_filter=2", p.B).
			has("evidence", strings.Join(f.Evidence, "\n"), "live check", "net.ipv4.conf.all.rp_filter=1")
	} else {
		c.unexplained("ip_rcv_finish_core")
	}
	c.done(d)
	d.mustNotClaim(t, "B receives for itself", "forwarding", "ip_forward", "firewall")
}

// Scenario 8: a UDP socket in B with the smallest receive buffer, which
// nobody reads, flooded from A. The analysis of a lost datagram says the
// buffer was full, from the drop reason and from UDP's own tracepoint.
func TestDiagRcvbufFull(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	const port = 7777
	udpSink(t, p.B, net.JoinHostPort(p.B4, strconv.Itoa(port)))

	// No -s: the in-kernel filter checks udp_fail_queue_rcv_skb's
	// addresses, the socket's, and an unconnected socket has no remote
	// address, so -s A would hide that event.
	d := diag(t, func() { floodUDP(t, p.A, p.B4, port, 300) },
		"--netns", p.B, "-p", "udp", "-d", p.B4, "-D", strconv.Itoa(port))
	f, a := d.mustFindDrop(t, "SOCKET_RCVBUFF", "udp_queue_rcv_one_skb")
	c := checkFinding(t, f).netns(p.InoB, p.B)
	if haveReasons {
		c.eq("level", f.Level, "error").
			has("message", f.Message, "receive buffer").
			has("advice", f.Advice, "SO_RCVBUF")
	} else {
		c.unexplained("udp_queue_rcv_one_skb")
	}
	c.done(d)
	// UDP's tracepoint names the socket, not the skb: it must still join
	// the datagram's story.
	var udp *finding
	for i := range a.Findings {
		if a.Findings[i].Probe == "udp_fail_queue_rcv_skb" {
			udp = &a.Findings[i]
		}
	}
	if udp == nil {
		t.Fatalf("the analysis of the dropped datagram (skb %s) has no udp_fail_queue_rcv_skb finding:\n%s\nevents:\n%s", a.Skb, d.dump(), dumpEvents(d.events))
	}
	checkFinding(t, *udp).
		eq("level", udp.Level, "error").
		match("message", udp.Message, regexp.MustCompile(`could not queue .* \d+ bytes queued, limit \d+`)).
		has("advice", udp.Advice, "SO_RCVBUF").
		done(d)
}

// Scenario 9: skbtrail --diag killed with SIGKILL leaves no nftables table
// and no BPF link behind: the kernel removes both with the process (the
// trace table is owned by its netlink socket, links by their file
// descriptors). Not parallel: it traces every namespace, and counts on
// them not changing under it.
func TestDiagSIGKILLLeavesNothing(t *testing.T) {
	needBinary(t)
	p := newPair(t)
	tr := run(t, "--diag", "-p", "icmp", "--addr", p.B4)
	pid := tr.cmd.Process.Pid
	prefix := fmt.Sprintf("skbtrail_%d", pid) // the tables of this process
	spaces := []string{"", p.A, p.B}

	// What it made: links of both kinds, and a trace table everywhere.
	links, err := bpfLinks(pid)
	if err != nil {
		t.Fatalf("links of skbtrail (pid %d): %v", pid, err)
	}
	kinds := map[string]int{}
	for _, typ := range links {
		kinds[typ]++
	}
	// Netfilter links only where the kernel has them (6.4+): on 6.1 the
	// tracepoint links and the trace tables are what must go.
	nf := haveNFLinks(t)
	if (nf && kinds["netfilter"] == 0) || kinds["raw_tracepoint"]+kinds["tracing"] == 0 {
		t.Fatalf("skbtrail --diag (pid %d) holds links %v: want raw_tracepoint/tracing ones (and netfilter ones: skbtrail check says the kernel has them), or this test proves nothing", pid, kinds)
	}
	if !nf {
		observed(t, tr.name(), tr.stderr.String())
	}
	for _, ns := range spaces {
		if !haveNFTrace {
			// Before 5.12 no table can be owned by its socket: there is no
			// rule trace, and skbtrail says so.
			if tables := nftTables(t, ns, prefix); len(tables) != 0 {
				t.Fatalf("%s* nftables tables %v in netns %q on a kernel before 5.12, which cannot tie them to skbtrail", prefix, tables, ns)
			}
			continue
		}
		if tables := nftTables(t, ns, prefix); len(tables) == 0 {
			t.Fatalf("no %s* nftables table in netns %q while skbtrail --diag runs: this test proves nothing", prefix, ns)
		}
	}
	if !haveNFTrace {
		saysNFTrace(t, tr.name(), tr.stderr.String())
	}
	t.Logf("skbtrail --diag (pid %d) holds %d links %v", pid, len(links), kinds)

	tr.signal(syscall.SIGKILL)
	if _, _, code := tr.wait(exitWithin); code != -1 {
		t.Fatalf("exit status %d after SIGKILL, want -1 (killed)", code)
	}
	// The kernel releases what a dead process held shortly after it is
	// reaped: poll.
	waitFor(t, 10*time.Second, "the links and tables of the killed skbtrail to go", func() (bool, string) {
		var left []string
		sys := systemLinks(t)
		for id, typ := range links {
			if sys[id] {
				left = append(left, fmt.Sprintf("link %d (%s)", id, typ))
			}
		}
		for _, ns := range spaces {
			for _, tb := range nftTables(t, ns, prefix) {
				left = append(left, fmt.Sprintf("table %s in netns %q", tb, ns))
			}
		}
		return len(left) == 0, strings.Join(left, ", ")
	})
}

// sawICMPSend says whether the kernel has the icmp_send tracepoint, so
// that --diag can report the ICMP error a drop caused. Where it has not,
// the run must have said, in its line of skipped tracers, that icmp_send
// is not in this kernel.
func sawICMPSend(t *testing.T, d diagRun) bool {
	t.Helper()
	if haveTracepoint(t, "icmp_send") {
		return true
	}
	if !regexp.MustCompile(`tracer\(s\) unavailable here, skipped:.* icmp_send \(not in this kernel\)`).MatchString(d.stderr) {
		t.Errorf("no icmp_send tracepoint in /proc/kallsyms, and skbtrail did not say it skipped icmp_send:\n%s", d.stderr)
	}
	return false
}
