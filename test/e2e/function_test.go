package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Function probes (fentry/fexit, kprobe, kprobe.multi) exist only where the
// kernel allows them. SKBTRAIL_E2E_FUNC_MODE says what this kernel must
// offer: a probe source (fentry, kprobe, kprobe.multi), which every traced
// function's begin-trace line must name, or "none", where asking for a
// function must fail with one clear line (TestFunctionUnavailable). What
// `skbtrail check` says must agree, else the tests fail: a wrong verdict
// cannot make them pass by testing nothing. Under CI=true the variable is
// required (test/vm/matrix sets it per kernel, .ci/run sets none for the
// host); elsewhere, unset, the tests follow what skbtrail check says and
// skip the scenarios this kernel cannot run.

// checkOutput is what `skbtrail check` says about this kernel.
var checkOutput = sync.OnceValues(func() (string, error) {
	out, err := runCmdTimeout(scaled(60*time.Second), binPath, "check")
	if err != nil {
		return "", fmt.Errorf("skbtrail check: %v\n%s", err, out)
	}
	return out, nil
})

var funcSupport = sync.OnceValues(func() (string, error) {
	out, err := checkOutput()
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^function probes: (.*)$`).FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("skbtrail check prints no 'function probes:' line:\n%s", out)
	}
	return m[1], nil
})

// haveNFLinks says whether this kernel takes BPF netfilter links (6.4+),
// which --diag's netfilter observers need, as `skbtrail check` says.
func haveNFLinks(t *testing.T) bool {
	t.Helper()
	needBinary(t)
	out, err := checkOutput()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^netfilter link +(yes|no)\b`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("skbtrail check prints no 'netfilter link yes|no' line:\n%s", out)
	}
	return m[1] == "yes"
}

// funcMode is $SKBTRAIL_E2E_FUNC_MODE: "", "none" or a probe source.
var funcMode = os.Getenv("SKBTRAIL_E2E_FUNC_MODE")

// needFuncs returns whether function probes can be used here: what
// SKBTRAIL_E2E_FUNC_MODE says, which skbtrail check must confirm. Under
// CI=true the variable must be set. Where not, the caller checks the
// refusal instead.
func needFuncs(t *testing.T) bool {
	t.Helper()
	needBinary(t)
	line, err := funcSupport()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("skbtrail check: function probes: %s", line)
	avail := !strings.HasPrefix(line, "none")
	switch {
	case funcMode == "" && os.Getenv("CI") == "true":
		t.Fatalf("CI=true: set SKBTRAIL_E2E_FUNC_MODE to what this kernel must offer (fentry, kprobe, kprobe.multi or none); skbtrail check says %q", line)
	case funcMode == "none" && avail:
		t.Fatalf("SKBTRAIL_E2E_FUNC_MODE=none, but skbtrail check says function probes: %s", line)
	case funcMode != "" && funcMode != "none" && !avail:
		t.Fatalf("SKBTRAIL_E2E_FUNC_MODE=%s, but skbtrail check says function probes: %s", funcMode, line)
	case funcMode != "" && funcMode != "none" && !strings.Contains(line, funcModeName(funcMode)):
		t.Fatalf("SKBTRAIL_E2E_FUNC_MODE=%s, but skbtrail check does not name it: function probes: %s", funcMode, line)
	}
	return avail
}

// funcModeName is how skbtrail names probe source mode in its output.
func funcModeName(mode string) string {
	if mode == "fentry" {
		return "fentry/fexit"
	}
	return mode
}

// skipUnlessFuncs skips a function scenario where function probes are
// unavailable, as SKBTRAIL_E2E_FUNC_MODE=none says (or, outside CI,
// skbtrail check): TestFunctionUnavailable checks the refusal there.
func skipUnlessFuncs(t *testing.T) {
	t.Helper()
	if !needFuncs(t) {
		t.Skip("function probes unavailable here (SKBTRAIL_E2E_FUNC_MODE=" + funcMode + "): TestFunctionUnavailable checks the refusal")
	}
}

func runCmdTimeout(d time.Duration, name string, args ...string) (string, error) {
	done := make(chan struct{})
	var out string
	var err error
	go func() {
		out, err = runCmd(name, args...)
		close(done)
	}()
	select {
	case <-done:
		return out, err
	case <-time.After(d):
		return "", fmt.Errorf("%s: no answer within %v", name, d)
	}
}

// startFuncs starts skbtrail and waits for it to begin tracing (run), then
// checks that it traces at least nfuncs functions (a name can be a
// tracepoint and a function, consume_skb is both), all with the probe
// source of SKBTRAIL_E2E_FUNC_MODE when set, and skipped none.
func startFuncs(t *testing.T, nfuncs int, args ...string) *proc {
	t.Helper()
	p := run(t, args...)
	stderr := p.stderr.String()
	begin := regexp.MustCompile(`begin trace\.\.\. \(([^\n]*)\)`).FindStringSubmatch(stderr)
	if begin == nil {
		t.Fatalf("%s: no begin line with what it traces:\n%s", p.name(), stderr)
	}
	t.Logf("%s: %s", p.name(), begin[1])
	m := regexp.MustCompile(`(\d+) functions \(([^)]*)\)`).FindStringSubmatch(begin[1])
	var n int
	if m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	if n < nfuncs {
		t.Fatalf("%s: begin line %q does not say it traces %d functions or more:\n%s", p.name(), begin[1], nfuncs, stderr)
	}
	if funcMode != "" && funcMode != "none" && m[2] != fmt.Sprintf("%d via %s", n, funcModeName(funcMode)) {
		t.Errorf("%s: begin line %q: want all %d functions via %s (SKBTRAIL_E2E_FUNC_MODE)", p.name(), begin[1], n, funcModeName(funcMode))
	}
	if strings.Contains(stderr, "cannot be probed here") {
		t.Errorf("%s: functions were skipped:\n%s", p.name(), stderr)
	}
	return p
}

// rawEvents parses --json lines into maps, to reach keys the event struct
// lacks ("ret", "nf_table", "nf_chain", "nf_verdict").
func rawEvents(t *testing.T, stdout string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %v: %s", err, line)
		}
		if m["type"] == "event" {
			out = append(out, m)
		}
	}
	return out
}

// On a kernel without function probes, asking for one is a one-line error
// (exit status 1: the kernel cannot, the input is fine), and a group that
// mixes tracepoints and functions traces with the tracepoints and says so.
func TestFunctionUnavailable(t *testing.T) {
	if needFuncs(t) {
		t.Skip("function probes are available here (SKBTRAIL_E2E_FUNC_MODE=" + funcMode + "): TestFunctionIPRcv and the others run instead")
	}
	_, stderr, code := runOnce(t, "-t", "ip_rcv", "--duration", "1s")
	if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 ||
		!strings.Contains(stderr, "function probes unavailable") {
		t.Errorf("-t ip_rcv: exit %d, stderr %q; want status 1 and one line saying function probes are unavailable", code, stderr)
	}
	_, stderr, code = runOnce(t, "-t", "ip", "-p", "icmp", "-s", "198.18.255.1", "--duration", "1s")
	if code != 0 || !strings.Contains(stderr, "function probes unavailable") || !strings.Contains(stderr, "tracepoints only") {
		t.Errorf("-t ip: exit %d, stderr %q; want status 0 and a line saying function probes are unavailable: tracepoints only", code, stderr)
	}
}

// Scenario: -t ip_rcv sees a ping arrive in B; with --ret its return value.
func TestFunctionIPRcv(t *testing.T) {
	skipUnlessFuncs(t)
	t.Parallel()
	for _, ret := range []bool{false, true} {
		t.Run(fmt.Sprintf("ret=%v", ret), func(t *testing.T) {
			p := newPair(t)
			p.warm(t)
			args := []string{"--json", "-t", "ip_rcv,consume_skb", "-p", "icmp", "-s", p.A4, "-d", p.B4, "-c", "1"}
			if ret {
				args = append(args, "--ret")
			}
			tr := startFuncs(t, 2, args...) // ip_rcv, and consume_skb's function
			mustPing(t, p.A, p.B4)
			stdout, stderr := tr.waitOK(exitWithin)
			evs := parseJSON(t, stdout, stderr)
			var rcv []event
			for _, e := range evs {
				if e.Probe == "ip_rcv" && e.Saddr != "" {
					rcv = append(rcv, e)
				}
			}
			if len(rcv) != 1 || !echoRequest(p.A4, p.B4)(rcv[0]) || rcv[0].Netns != p.InoB || rcv[0].Group != "ip" {
				t.Fatalf("want one ip_rcv event of the echo request in B (netns %d, group ip):\n%s\n%s", p.InoB, dumpEvents(evs), tr.report())
			}
			if !ret {
				return
			}
			for _, m := range rawEvents(t, stdout) {
				if m["probe"] == "ip_rcv" && m["skb"] == rcv[0].Skb {
					if v, ok := m["ret"]; ok {
						if v != float64(0) {
							t.Errorf("ip_rcv returned %v for a delivered ping, want 0 (NET_RX_SUCCESS)", v)
						}
						return
					}
				}
			}
			t.Errorf("--ret: no ip_rcv event with \"ret\" for skb %s:\n%s", rcv[0].Skb, stdout)
		})
	}
}

// Scenario: R forwards from A to B, and an iptables-legacy rule in R's
// FORWARD chain drops ICMP: ipt_do_table's return names table filter,
// chain FORWARD and NF_DROP, and --diag blames them.
func TestFunctionIptablesLegacyForwardDrop(t *testing.T) {
	skipUnlessFuncs(t)
	if _, err := runCmd("iptables-legacy", "--version"); err != nil {
		t.Fatalf("iptables-legacy is needed (Debian's iptables package): %v", err)
	}
	t.Parallel()
	a, r, b := fnRouter(t)
	mustNS(t, r.ns, "iptables-legacy", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")
	tr := startFuncs(t, 1, "--json", "--diag", "--no-nftrace", "-t", "ipt_do_table,kfree_skb", "-p", "icmp", "-s", a.addr, "-d", b.addr, "--duration", durArg(4*time.Second))
	if ok, _ := ping(a.ns, b.addr); ok {
		t.Errorf("ping from A to B through R was answered despite the DROP rule")
	}
	tr.inWindow(4 * time.Second)
	stdout, _ := tr.waitOK(exitWithin)
	var sawDrop bool
	for _, m := range rawEvents(t, stdout) {
		if m["probe"] == "ipt_do_table" && m["nf_verdict"] == "NF_DROP" {
			sawDrop = true
			if m["nf_table"] != "filter" || m["nf_chain"] != "FORWARD" {
				t.Errorf("ipt_do_table drop: table %v chain %v, want filter FORWARD: %v", m["nf_table"], m["nf_chain"], m)
			}
		}
	}
	if !sawDrop {
		t.Fatalf("no ipt_do_table event with verdict NF_DROP:\n%s\n%s", stdout, tr.report())
	}
	if !strings.Contains(stdout, `dropped by iptables: table filter, chain FORWARD`) {
		t.Errorf("--diag does not say `dropped by iptables: table filter, chain FORWARD`:\n%s", stdout)
	}
}

type fnNS struct{ ns, addr string }

// fnRouter makes namespaces A - R - B (R forwarding, default routes via R)
// and returns A, R and B with their addresses (R's: its A side).
func fnRouter(t *testing.T) (a, r, b fnNS) {
	t.Helper()
	n1, n2 := allocSubnet(t), allocSubnet(t)
	id := fmt.Sprintf("%s%06x%04x", nsPrefix, os.Getpid()&0xffffff, rand.IntN(1<<16))
	// Names end in -a/-b (and -r): the leftover sweep knows -a and -b.
	a = fnNS{id + "-a", fmt.Sprintf("198.%d.%d.1", 18+n1/256, n1%256)}
	r = fnNS{id + "-r", fmt.Sprintf("198.%d.%d.2", 18+n1/256, n1%256)}
	b = fnNS{id + "-b", fmt.Sprintf("198.%d.%d.2", 18+n2/256, n2%256)}
	rb := fmt.Sprintf("198.%d.%d.1", 18+n2/256, n2%256)
	for _, ns := range []string{a.ns, r.ns, b.ns} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { runCmd("ip", "netns", "del", ns) })
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "-n", a.ns, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-ra", "netns", r.ns)
	mustRun(t, "ip", "-n", b.ns, "link", "add", "veth-b", "type", "veth", "peer", "name", "veth-rb", "netns", r.ns)
	for _, s := range []struct{ ns, dev, addr string }{
		{a.ns, "veth-a", a.addr}, {r.ns, "veth-ra", r.addr}, {r.ns, "veth-rb", rb}, {b.ns, "veth-b", b.addr},
	} {
		mustRun(t, "ip", "-n", s.ns, "addr", "add", s.addr+"/24", "dev", s.dev)
		mustRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
	}
	mustRun(t, "ip", "-n", a.ns, "route", "add", "default", "via", r.addr)
	mustRun(t, "ip", "-n", b.ns, "route", "add", "default", "via", rb)
	mustNS(t, r.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	waitFor(t, 10*time.Second, "A reaches B through R", func() (bool, string) { return ping(a.ns, b.addr) })
	return a, r, b
}
