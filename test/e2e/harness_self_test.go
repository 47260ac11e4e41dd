package e2e

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestHarness checks the test bed itself, without skbtrail: the pair is
// isolated from the host and reachable over IPv4 and IPv6, and the traffic
// the scenarios make behaves as they expect (nft drop, TCP reset).
func TestHarness(t *testing.T) {
	needRoot(t)
	t.Parallel()
	p := newPair(t)

	var host syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &host); err != nil {
		t.Fatal(err)
	}
	if p.InoA == 0 || p.InoB == 0 || p.InoA == p.InoB || p.InoA == host.Ino || p.InoB == host.Ino {
		t.Fatalf("namespace inodes: A %d, B %d, host %d: want three different ones", p.InoA, p.InoB, host.Ino)
	}
	for _, ns := range []string{p.A, p.B} {
		out := mustNS(t, ns, "ip", "-o", "link", "show")
		if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 2 {
			t.Errorf("netns %s has %d links, want lo and one veth end:\n%s", ns, n, out)
		}
	}
	if out, _ := runCmd("ip", "-o", "link", "show", p.IfA); !strings.Contains(out, "does not exist") {
		t.Errorf("a link named %s is visible in the host namespace: %s", p.IfA, out)
	}

	mustPing(t, p.A, p.B4)
	mustPing(t, p.B, p.A4)
	mustPing(t, p.A, p.B6)
	mustPing(t, p.B, p.A6)

	out, err := tcpConnect(p.A, p.B4, 81)
	if err == nil || !strings.Contains(out, "refused") {
		t.Errorf("TCP connect to closed port %s:81: err %v, output %q: want connection refused", p.B4, err, out)
	}

	addDropEchoRule(t, p.B)
	if ok, out := ping(p.A, p.B4); ok {
		t.Errorf("ping through the nft drop rule succeeded:\n%s", out)
	}
	mustPing(t, p.A, p.B6) // the rule drops IPv4 echo requests only
}

// tcpConnect opens a TCP connection from ns to addr:port with bash's
// /dev/tcp and closes it.
func tcpConnect(ns, addr string, port int) (string, error) {
	return inNS(ns, "bash", "-c", "exec 3<>/dev/tcp/"+addr+"/"+strconv.Itoa(port))
}

// addDropEchoRule makes ns drop incoming IPv4 echo requests at the input
// hook (table inet sbt), and deletes the table when the test ends.
func addDropEchoRule(t *testing.T, ns string) {
	t.Helper()
	mustNS(t, ns, "nft", "add", "table", "inet", "sbt")
	t.Cleanup(func() { _, _ = inNS(ns, "nft", "delete", "table", "inet", "sbt") })
	mustNS(t, ns, "nft", "add", "chain", "inet", "sbt", "input", "{ type filter hook input priority 0; policy accept; }")
	mustNS(t, ns, "nft", "add", "rule", "inet", "sbt", "input", "icmp", "type", "echo-request", "drop")
}
