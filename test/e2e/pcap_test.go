package e2e

import (
	"context"
	"fmt"
	"os"
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

// A bad expression: the compiler's message on one line, exit status 2.
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

// The capture file holds packet payloads: it is created 0600 whatever the
// umask; an existing file is refused (one line, status 2) unless --force;
// a symbolic link planted in its place is never followed, even with
// --force, and its target is left alone.
func TestPcapFileSafety(t *testing.T) {
	needBinary(t)
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A new file: 0600, though skbtrail runs with umask 022 (the test's).
	file := filepath.Join(dir, "new.pcapng")
	stdout, stderr, code := runOnce(t, "--duration", durArg(300*time.Millisecond), "-p", "icmp", "--pcap", file)
	if code != 0 {
		t.Fatalf("--pcap %s: status %d:\n%s", file, code, describeOutput(stdout, stderr))
	}
	assertMode := func(path string) {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode %v, want -rw------- (0600)", path, fi.Mode())
		}
	}
	assertMode(file)

	// It exists now: refused without --force, overwritten with it.
	os.Chmod(file, 0o644)
	stdout, stderr, code = runOnce(t, "--duration", "300ms", "-p", "icmp", "--pcap", file)
	if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--force") {
		t.Errorf("--pcap over an existing file: status %d, want 2 and one line naming --force:\n%s", code, describeOutput(stdout, stderr))
	}
	stdout, stderr, code = runOnce(t, "--duration", durArg(300*time.Millisecond), "-p", "icmp", "--pcap", file, "--force")
	if code != 0 {
		t.Errorf("--pcap over an existing file with --force: status %d:\n%s", code, describeOutput(stdout, stderr))
	}
	assertMode(file)

	// Planted links: to an existing file, and dangling (the attack that
	// makes root create a file where the link points).
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{victim, filepath.Join(dir, "created-through-link")} {
		link := filepath.Join(dir, "link.pcapng")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		for _, force := range []bool{false, true} {
			args := []string{"--duration", "300ms", "-p", "icmp", "--pcap", link}
			if force {
				args = append(args, "--force")
			}
			stdout, stderr, code := runOnce(t, args...)
			if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "symbolic link") {
				t.Errorf("skbtrail %s (link to %s): status %d, want 2 and one line saying it is a symbolic link:\n%s",
					strings.Join(args, " "), target, code, describeOutput(stdout, stderr))
			}
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep me" {
		t.Errorf("the link's target was written: %q", b)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); err == nil {
		t.Errorf("a file was created through a dangling link")
	}
}
