package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A tcpdump filter expression selects exactly the packets it names, and
// --pcap writes each traced event's packet to a pcapng file that tshark
// reads: as many packets as events with headers, with skbtrail's comments.
func TestPcapExpression(t *testing.T) {
	needBinary(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is needed to read the capture (Debian package tshark; test/run installs it)")
	}
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	file := filepath.Join(t.TempDir(), "trace.pcapng")
	// Only A's echo requests to B: not the replies, not IPv6, not UDP.
	expr := fmt.Sprintf("icmp and src host %s and dst host %s and icmp[icmptype] == icmp-echo", p.A4, p.B4)
	tr := run(t, "--json", "--duration", durArg(4*time.Second), "--pcap", file, "--snaplen", "64", expr)
	for i := 0; i < 2; i++ {
		mustPing(t, p.A, p.B4)
		mustPing(t, p.A, p.B6)
		mustNS(t, p.A, "sh", "-c", fmt.Sprintf("echo x > /dev/udp/%s/9 || true", p.B4))
	}
	tr.inWindow(4 * time.Second)
	stdout, stderr := tr.waitOK(exitWithin)
	evs := parseJSON(t, stdout, stderr)

	withHeaders := 0
	for _, e := range evs {
		// Route lookups (no skb) carry a flow, not a packet: the
		// expression cannot run on them, and they pass as with the
		// loose flag match; the tracker shows those it joins to a
		// traced packet.
		if (e.Saddr == "" && e.Daddr == "") || !e.hasSkb() {
			continue
		}
		if !sameAddr(e.Saddr, p.A4) || !sameAddr(e.Daddr, p.B4) || e.Proto != "icmp" || e.icmpType() != 8 {
			t.Errorf("expression %q let through: %s\n  %s", expr, e, e.line)
		}
		if strings.Contains(e.line, `"ttl":`) {
			withHeaders++
		}
	}
	// Both echo requests arrived in B (the skb may be the same memory).
	arrived := 0
	for _, e := range evs {
		if e.Probe == "netif_receive_skb" && echoRequest(p.A4, p.B4)(e) {
			arrived++
		}
	}
	if arrived != 2 {
		t.Fatalf("want the 2 echo requests arriving in B, got %d:\n%s", arrived, dumpEvents(evs))
	}

	// tshark reads the capture: every packet is one of those echo
	// requests, with a comment naming probe, skb, netns and device.
	out, err := tsharkOut(tshark, "-r", file, "-T", "fields", "-E", "separator=|",
		"-e", "ip.src", "-e", "ip.dst", "-e", "icmp.type", "-e", "frame.comment")
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", file, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != withHeaders {
		t.Errorf("tshark shows %d packets, skbtrail printed %d events with headers:\n%s", len(lines), withHeaders, out)
	}
	sawB := false
	for _, l := range lines {
		f := strings.Split(l, "|")
		if len(f) < 4 || f[0] != p.A4 || f[1] != p.B4 || f[2] != "8" || !strings.HasPrefix(f[3], "skbtrail: ") ||
			!strings.Contains(f[3], " skb 0x") || !strings.Contains(f[3], " netns ") || !strings.Contains(f[3], " dev ") {
			t.Errorf("tshark line %q: want %s > %s echo request with skbtrail's comment", l, p.A4, p.B4)
		}
		if strings.Contains(l, fmt.Sprintf("netns %d dev %s", p.InoB, p.IfB)) {
			sawB = true
		}
	}
	if !sawB {
		t.Errorf("no packet seen in B's namespace on %s:\n%s", p.IfB, out)
	}
	// One interface block per (netns, device).
	out, err = tsharkOut(tshark, "-r", file, "-T", "fields", "-e", "frame.interface_description")
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	for _, want := range []string{fmt.Sprintf("%s in netns %d", p.IfA, p.InoA), fmt.Sprintf("%s in netns %d", p.IfB, p.InoB)} {
		if !strings.Contains(out, want) {
			t.Errorf("no interface %q in the capture:\n%s", want, out)
		}
	}
}

// A bad expression: libpcap's message on one line, exit status 2.
func TestPcapBadExpression(t *testing.T) {
	needBinary(t)
	t.Parallel()
	stdout, stderr, code := runOnce(t, "tcp and and port 80")
	if code != 2 || !strings.Contains(stderr, "syntax error") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stdout != "" {
		t.Errorf("exit %d, stderr %q, stdout %q: want 2 and libpcap's syntax error on one line", code, stderr, stdout)
	}
}

// tsharkOut runs tshark and returns its stdout (its stderr has a warning
// when it runs as root).
func tsharkOut(tshark string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tshark, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}
