package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Scenario 6: bad input is refused with exit status 2 and one line on
// stderr, before anything is set up. Not parallel: it checks that nothing
// appeared on the host, which needs the other tests of this package paused.
func TestBadInput(t *testing.T) {
	needBinary(t)
	cases := []struct {
		name    string
		args    []string
		mention string // the error must name what was wrong
	}{
		{"saddr", []string{"--saddr", "1.2.3"}, "1.2.3"},
		{"proto", []string{"-p", "foo"}, "foo"},
		{"dport", []string{"--dport", "70000"}, "70000"},
		{"netns", []string{"--netns", "nonexistent-ns"}, "nonexistent-ns"},
		{"tracer", []string{"-t", "nosuchtracer"}, "nosuchtracer"},
		{"flag", []string{"--frobnicate"}, "frobnicate"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := hostState()
			stdout, stderr, code := runOnce(t, c.args...)
			after := hostState()
			cmd := "skbtrail " + strings.Join(c.args, " ")
			if code != 2 {
				t.Errorf("%s: exit status %d, want 2", cmd, code)
			}
			if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); strings.TrimSpace(stderr) == "" || len(lines) != 1 {
				t.Errorf("%s: want exactly one line on stderr, got %d:\n%s", cmd, len(lines), stderr)
			}
			if !strings.Contains(stderr, c.mention) {
				t.Errorf("%s: the error does not name %q: %s", cmd, c.mention, stderr)
			}
			if stdout != "" {
				t.Errorf("%s: want no stdout, got:\n%s", cmd, tail(stdout, 20, 2000))
			}
			if c.name == "netns" {
				if _, err := os.Lstat("/run/netns/nonexistent-ns"); err == nil {
					t.Errorf("%s created /run/netns/nonexistent-ns", cmd)
					_, _ = runCmd("ip", "netns", "del", "nonexistent-ns")
				}
			}
			for _, d := range after.newSince(before) {
				t.Errorf("%s left something on the host: %s", cmd, d)
			}
		})
	}
}

// hostSnapshot is what the host shows of namespaces, links and nft tables.
type hostSnapshot struct {
	netns, links, tables []string
}

func hostState() hostSnapshot {
	var s hostSnapshot
	s.netns = netnsNames()
	if out, err := runCmd("ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 {
				s.links = append(s.links, strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"))
			}
		}
	}
	if out, err := runCmd("nft", "list", "tables"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			if line = strings.TrimSpace(line); line != "" {
				s.tables = append(s.tables, line)
			}
		}
	}
	return s
}

// newSince lists what s has that before did not: any new link or nft table
// in the host namespace, and new namespaces (other than this package's own,
// which another test may be creating).
func (s hostSnapshot) newSince(before hostSnapshot) []string {
	var d []string
	for _, n := range s.netns {
		if !slices.Contains(before.netns, n) && !strings.HasPrefix(n, nsPrefix) {
			d = append(d, "network namespace "+n)
		}
	}
	for _, l := range s.links {
		if !slices.Contains(before.links, l) {
			d = append(d, "link "+l)
		}
	}
	for _, tb := range s.tables {
		if !slices.Contains(before.tables, tb) {
			d = append(d, "nft "+tb)
		}
	}
	return d
}

// Scenario 7: -t ? lists the tracers; skbtrail check reports kernel support.
func TestListTracers(t *testing.T) {
	needBinary(t)
	t.Parallel()
	stdout, stderr, code := runOnce(t, "-t", "?")
	if code != 0 {
		t.Errorf("skbtrail -t ?: exit status %d, want 0", code)
	}
	for _, name := range []string{
		"napi_gro_receive_entry", "netif_rx", "netif_receive_skb",
		"net_dev_queue", "net_dev_start_xmit", "net_dev_xmit",
		"qdisc_enqueue", "qdisc_dequeue", "fib_table_lookup", "icmp_send",
		"tcp_send_reset", "tcp_receive_reset", "tcp_retransmit_skb", "tcp_bad_csum",
		"udp_fail_queue_rcv_skb", "sock_rcvqueue_full", "skb_copy_datagram_iovec",
		"kfree_skb", "consume_skb",
	} {
		if !strings.Contains(stdout, name) {
			t.Errorf("skbtrail -t ?: tracer %s not listed on stdout", name)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", describeOutput(stdout, stderr))
	}
}

func TestCheck(t *testing.T) {
	needBinary(t)
	t.Parallel()
	stdout, stderr, code := runOnce(t, "check")
	if code != 0 {
		t.Errorf("skbtrail check: exit status %d, want 0", code)
	}
	if !strings.Contains(stdout+stderr, "BTF") {
		t.Errorf("skbtrail check does not mention BTF")
	}
	if t.Failed() {
		t.Logf("output:\n%s", describeOutput(stdout, stderr))
	}
}
