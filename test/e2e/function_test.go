package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Function probes (fentry/fexit, kprobe, kprobe.multi) exist only where the
// kernel allows them: these tests ask `skbtrail check` first. Where it says
// none can be used (the CI host: no kprobes, fentry refused), they check
// that asking for a function fails with one clear line instead; they never
// skip. SKBTRAIL_E2E_FUNC_MODE (fentry, kprobe, kprobe.multi), when set,
// is the probe source the begin-trace line must name (the VM matrix sets it).

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

// needFuncs returns whether function probes can be used here. Where not,
// the caller checks the refusal instead.
func needFuncs(t *testing.T) bool {
	t.Helper()
	needBinary(t)
	line, err := funcSupport()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("skbtrail check: function probes: %s", line)
	return !strings.HasPrefix(line, "none")
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
// checks which probe source the begin line names.
func startFuncs(t *testing.T, args ...string) *proc {
	t.Helper()
	p := run(t, args...)
	begin := regexp.MustCompile(`begin trace\.\.\. \(([^\n]*)\)`).FindStringSubmatch(p.stderr.String())
	t.Logf("%s: %s", p.name(), begin[1])
	if want := os.Getenv("SKBTRAIL_E2E_FUNC_MODE"); want != "" && !strings.Contains(begin[1], "via "+want) {
		t.Errorf("begin line %q does not name probe source %q (SKBTRAIL_E2E_FUNC_MODE)", begin[1], want)
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
		t.Log("function probes are available here: TestFunctionIPRcv and the others run instead")
		return
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
	if !needFuncs(t) {
		t.Log("function probes unavailable here: TestFunctionUnavailable checks the refusal")
		return
	}
	t.Parallel()
	for _, ret := range []bool{false, true} {
		t.Run(fmt.Sprintf("ret=%v", ret), func(t *testing.T) {
			p := newPair(t)
			p.warm(t)
			args := []string{"--json", "-t", "ip_rcv,consume_skb", "-p", "icmp", "-s", p.A4, "-d", p.B4, "-c", "1"}
			if ret {
				args = append(args, "--ret")
			}
			tr := startFuncs(t, args...)
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
	if !needFuncs(t) {
		t.Log("function probes unavailable here: TestFunctionUnavailable checks the refusal")
		return
	}
	if _, err := runCmd("iptables-legacy", "--version"); err != nil {
		t.Fatalf("iptables-legacy is needed (Debian's iptables package): %v", err)
	}
	t.Parallel()
	a, r, b := fnRouter(t)
	mustNS(t, r.ns, "iptables-legacy", "-A", "FORWARD", "-p", "icmp", "-j", "DROP")
	tr := startFuncs(t, "--json", "--diag", "--no-nftrace", "-t", "ipt_do_table,kfree_skb", "-p", "icmp", "-s", a.addr, "-d", b.addr, "--duration", durArg(4*time.Second))
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
