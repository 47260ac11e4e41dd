package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// What the host does around a running skbtrail --diag: each fault happens
// while it traces, and each time skbtrail goes on (or stops with one clear
// line), holds no more file descriptors than before, leaves no BPF link and
// no nftables table once it exits, and changes neither the user's ruleset
// nor any sysctl (dumps before and after compared).
func TestFaultsAroundDiag(t *testing.T) {
	needBinary(t)
	for _, c := range []struct {
		name string
		args func(p *pair) []string
		// fault does it; it returns the namespaces that are still there
		// to compare (the traced one may be gone).
		fault func(t *testing.T, p *pair) []string
		// canStop: skbtrail may stop (with one line) instead of going on.
		canStop bool
	}{
		{
			name: "traced namespace deleted",
			args: func(p *pair) []string { return []string{"--netns", p.B} },
			fault: func(t *testing.T, p *pair) []string {
				mustRun(t, "ip", "netns", "del", p.B)
				return []string{p.A}
			},
			canStop: true,
		},
		{
			name: "traced interface removed and re-created",
			args: func(p *pair) []string { return []string{"--netns", p.B, "--dev", p.IfB} },
			fault: func(t *testing.T, p *pair) []string {
				mustRun(t, "ip", "-n", p.A, "link", "del", p.IfA)
				time.Sleep(300 * time.Millisecond)
				mustRun(t, "ip", "-n", p.A, "link", "add", p.IfA, "type", "veth", "peer", "name", p.IfB, "netns", p.B)
				for _, s := range []struct{ ns, dev, v4 string }{{p.A, p.IfA, p.A4}, {p.B, p.IfB, p.B4}} {
					mustRun(t, "ip", "-n", s.ns, "addr", "add", s.v4+"/24", "dev", s.dev)
					mustRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
				}
				waitFor(t, 10*time.Second, "the re-created pair to pass a ping", func() (bool, string) { return ping(p.A, p.B4) })
				return []string{p.A, p.B}
			},
		},
		{
			name: "whole nftables ruleset flushed, skbtrail's table included",
			args: func(p *pair) []string { return []string{"--netns", p.B} },
			fault: func(t *testing.T, p *pair) []string {
				tables := nftTables(t, p.B, "skbtrail_")
				switch {
				case haveNFTrace && len(tables) == 0:
					t.Fatalf("no skbtrail table in %s before the flush: the fault proves nothing", p.B)
				case !haveNFTrace && len(tables) != 0:
					// Before 5.12 no table can be owned by its socket:
					// one made anyway would outlive a crash of skbtrail.
					t.Fatalf("skbtrail tables %v in %s on a kernel that cannot own them (NFT_TABLE_F_OWNER needs 5.12)", tables, p.B)
				}
				// Before 5.12 the flush takes only the user's table: skbtrail
				// must go on all the same, and leave the ruleset as flushed.
				mustNS(t, p.B, "nft", "flush", "ruleset")
				return []string{p.A, p.B}
			},
		},
		{
			name: "conntrack flushed",
			args: func(p *pair) []string { return []string{"--netns", p.B} },
			fault: func(t *testing.T, p *pair) []string {
				// A flow for conntrack to hold first.
				mustPing(t, p.A, p.B4)
				if err := inNetns(t, p.B, func() error { return netlink.ConntrackTableFlush(netlink.ConntrackTable) }); err != nil {
					t.Fatalf("flush conntrack in %s: %v", p.B, err)
				}
				return []string{p.A, p.B}
			},
		},
		{
			name: "a second skbtrail starts and stops beside it",
			args: func(p *pair) []string { return []string{"--netns", p.B} },
			fault: func(t *testing.T, p *pair) []string {
				second := run(t, "--diag", "-p", "icmp", "--netns", p.B, "--addr", p.B4)
				mustPing(t, p.A, p.B4)
				second.signal(os.Interrupt)
				if _, _, code := second.wait(exitWithin); code != 0 {
					t.Errorf("the second skbtrail: exit status %d:\n%s", code, second.report())
				}
				waitFor(t, 10*time.Second, "the second skbtrail's tables to go", func() (bool, string) {
					left := nftTables(t, p.B, fmt.Sprintf("skbtrail_%d", second.cmd.Process.Pid))
					return len(left) == 0, strings.Join(left, ", ")
				})
				return []string{p.A, p.B}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newPair(t)
			p.warm(t)
			// The user's own ruleset and conntrack use, to be left alone.
			mustNS(t, p.B, "nft", "add table inet user_fw ; add chain inet user_fw input { type filter hook input priority 0 ; policy accept ; } ; add rule inet user_fw input ct state established,related counter accept ; add rule inet user_fw input udp dport 7 counter drop")
			before := map[string]nsState{}
			for _, ns := range []string{p.A, p.B} {
				before[ns] = dumpNS(t, ns)
			}
			hostBefore := hostSysctls(t)

			args := append([]string{"--diag", "--diag-keep", "-p", "icmp", "--addr", p.B4}, c.args(p)...)
			tr := run(t, args...)
			pid := tr.cmd.Process.Pid
			links, err := bpfLinks(pid)
			if err != nil || len(links) == 0 {
				t.Fatalf("skbtrail (pid %d) holds no BPF link (%v): this test proves nothing", pid, err)
			}
			mustPing(t, p.A, p.B4)
			time.Sleep(300 * time.Millisecond) // let lazy work (live checks) settle
			fdsBefore := fdCount(t, pid)

			left := c.fault(t, p)

			// It goes on: a ping is still traced (where it still can be),
			// and it is still running a moment later.
			if slices.Contains(left, p.B) {
				mustPing(t, p.A, p.B4)
			}
			time.Sleep(scaled(time.Second))
			stopped := false
			select {
			case <-tr.done:
				stopped = true
			default:
			}
			if stopped && !c.canStop {
				t.Fatalf("skbtrail stopped after the fault:\n%s", tr.report())
			}
			t.Logf("after the fault: stopped %v, stderr:\n%s", stopped, tr.stderr.String())
			if !haveNFTrace && c.name == "whole nftables ruleset flushed, skbtrail's table included" {
				saysNFTrace(t, tr.name(), tr.stderr.String()) // there is no table: it said why, once
			}
			if !stopped {
				if n := fdCount(t, pid); n > fdsBefore {
					t.Errorf("skbtrail holds %d file descriptors after the fault, %d before: a leak\n%s", n, fdsBefore, fdList(pid))
				}
				tr.signal(os.Interrupt)
			}
			_, stderr, code := tr.wait(exitWithin)
			if code != 0 {
				// Where it cannot go on: one clear line, status 1.
				lines := strings.Split(strings.TrimSpace(stderr), "\n")
				last := lines[len(lines)-1]
				if !c.canStop || code != 1 || !strings.HasPrefix(last, "skbtrail: ") {
					t.Errorf("exit status %d, want 0 (or 1 with one line saying why):\n%s", code, tr.report())
				}
			}

			// Nothing left behind.
			waitFor(t, 10*time.Second, "skbtrail's links and tables to go", func() (bool, string) {
				var rest []string
				sys := systemLinks(t)
				for id, typ := range links {
					if sys[id] {
						rest = append(rest, fmt.Sprintf("link %d (%s)", id, typ))
					}
				}
				for _, ns := range append([]string{""}, left...) {
					for _, tb := range nftTables(t, ns, fmt.Sprintf("skbtrail_%d", pid)) {
						rest = append(rest, fmt.Sprintf("table %s in netns %q", tb, ns))
					}
				}
				return len(rest) == 0, strings.Join(rest, ", ")
			})
			// Nothing changed: the user's ruleset (as the user left it: the
			// flush is theirs) and every sysctl.
			for _, ns := range left {
				want := before[ns]
				if c.name == "whole nftables ruleset flushed, skbtrail's table included" && ns == p.B {
					want.ruleset = ""
				}
				got := dumpNS(t, ns)
				if c.name != "whole nftables ruleset flushed, skbtrail's table included" && c.name != "conntrack flushed" &&
					c.name != "a second skbtrail starts and stops beside it" {
					// The veth pair was re-created, or went with the deleted
					// namespace: its sysctls are not the ones of before, by
					// the user's doing. Compare the rest.
					want.sysctls = dropDev(want.sysctls, p.IfA, p.IfB)
					got.sysctls = dropDev(got.sysctls, p.IfA, p.IfB)
				}
				if got.ruleset != want.ruleset {
					t.Errorf("netns %s: the ruleset changed:\n--- before\n%s\n--- after\n%s", ns, want.ruleset, got.ruleset)
				}
				if d := diffLines(want.sysctls, got.sysctls); d != "" {
					t.Errorf("netns %s: sysctls changed:\n%s", ns, d)
				}
			}
			if d := diffLines(hostBefore, hostSysctls(t)); d != "" {
				t.Errorf("host sysctls changed:\n%s", d)
			}
		})
	}
}

// nsState is what a namespace's user configured: its nftables ruleset
// (skbtrail's tables left out, counters zeroed) and its sysctls.
type nsState struct {
	ruleset string
	sysctls []string
}

var (
	skbtrailTable = regexp.MustCompile(`(?ms)^table \w+ skbtrail_\d+(_\d+)? \{.*?^\}\n?`)
	counterValues = regexp.MustCompile(`counter packets \d+ bytes \d+`)
)

func dumpNS(t *testing.T, ns string) nsState {
	t.Helper()
	rules := mustNS(t, ns, "nft", "list", "ruleset")
	rules = skbtrailTable.ReplaceAllString(rules, "")
	rules = counterValues.ReplaceAllString(rules, "counter")
	return nsState{ruleset: strings.TrimSpace(rules), sysctls: sysctls(t, ns, "net.")}
}

// volatileSysctl matches sysctls that change by themselves (use counts).
var volatileSysctl = regexp.MustCompile(`^net\.netfilter\.nf_conntrack_(count|expect_count) |^kernel\.perf_event_max_sample_rate |^kernel\.perf_cpu_time_max_percent |^net\.ipv6\.conf\.\S+\.stable_secret|\.base_reachable_time|^net\.ipv4\.tcp_fastopen_key`)

// sysctls returns the sysctls under prefix in namespace ns ("" for the
// host's), "key = value" each, sorted.
func sysctls(t *testing.T, ns, prefix string) []string {
	t.Helper()
	args := []string{"sysctl", "-a"}
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).Output() // stderr: keys that cannot be read
	if err != nil && len(out) == 0 {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix) && !volatileSysctl.MatchString(line) {
			keep = append(keep, line)
		}
	}
	slices.Sort(keep)
	return keep
}

// hostSysctls returns the host's sysctls a tracer could be tempted to
// change: BPF, perf, kallsyms, forwarding and the filters of every interface.
func hostSysctls(t *testing.T) []string {
	var keep []string
	for _, l := range sysctls(t, "", "") {
		for _, p := range []string{"kernel.bpf", "kernel.unprivileged_bpf", "kernel.perf_", "kernel.kptr_restrict",
			"kernel.ftrace", "net.core.bpf", "net.ipv4.ip_forward", "net.ipv4.conf.all.", "net.ipv4.conf.default.",
			"net.ipv6.conf.all.", "net.ipv6.conf.default.", "net.netfilter.nf_log"} {
			if strings.HasPrefix(l, p) && !volatileSysctl.MatchString(l) {
				keep = append(keep, l)
			}
		}
	}
	return keep
}

// dropDev leaves out the sysctls of the named interfaces.
func dropDev(lines []string, devs ...string) []string {
	var out []string
next:
	for _, l := range lines {
		for _, d := range devs {
			if strings.Contains(l, "."+d+".") {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// diffLines says which lines are only in a or only in b.
func diffLines(a, b []string) string {
	var d []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			d = append(d, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			d = append(d, "+ "+l)
		}
	}
	return strings.Join(d, "\n")
}

// fdCount returns how many file descriptors process pid holds.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("fds of %d: %v", pid, err)
	}
	return len(ents)
}

// fdList describes the file descriptors of pid, for a failure message.
func fdList(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var b strings.Builder
	for _, e := range ents {
		l, _ := os.Readlink(dir + "/" + e.Name())
		fmt.Fprintf(&b, "%s -> %s\n", e.Name(), l)
	}
	return b.String()
}
