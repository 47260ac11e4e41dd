package nftrace

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/netns"
)

var update = flag.Bool("update", false, "capture trace messages of the host tests into testdata/")

// helperEnv makes the test binary a helper that starts a Tracer in the
// namespace it names, says "ready", and blocks until killed.
const helperEnv = "SKBTRAIL_NFTRACE_HELPER"

func TestMain(m *testing.M) {
	if ns := os.Getenv(helperEnv); ns != "" {
		t, err := Start(context.Background(), Options{Netns: ns})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready", t.Table())
		select {}
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("host tests need root; CI must run them as root")
	}
	t.Skip("host tests need root")
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// pair is two namespaces joined by a veth pair, with addresses from
// 198.18.0.0/15 and fd00::/8 only.
type pair struct {
	a, b         string // names under /run/netns
	a4, b4       netip.Addr
	a6, b6       netip.Addr
	pathA, pathB string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	needRoot(t)
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(r[:2])
	p := &pair{
		a:  "sbt-nft-" + id + "-a",
		b:  "sbt-nft-" + id + "-b",
		a4: netip.AddrFrom4([4]byte{198, 18, r[2], 1}),
		b4: netip.AddrFrom4([4]byte{198, 18, r[2], 2}),
		a6: netip.MustParseAddr(fmt.Sprintf("fd00:5b7:%s::1", id)),
		b6: netip.MustParseAddr(fmt.Sprintf("fd00:5b7:%s::2", id)),
	}
	p.pathA, p.pathB = filepath.Join("/run/netns", p.a), filepath.Join("/run/netns", p.b)
	for _, ns := range []string{p.a, p.b} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	va, vb := "sbtnft"+id+"a", "sbtnft"+id+"b"
	run(t, "ip", "-n", p.a, "link", "add", va, "type", "veth", "peer", "name", vb, "netns", p.b)
	for _, c := range []struct {
		ns, dev string
		v4, v6  netip.Addr
	}{{p.a, va, p.a4, p.a6}, {p.b, vb, p.b4, p.b6}} {
		run(t, "ip", "-n", c.ns, "addr", "add", c.v4.String()+"/24", "dev", c.dev)
		run(t, "ip", "-n", c.ns, "addr", "add", c.v6.String()+"/64", "dev", c.dev, "nodad")
		run(t, "ip", "-n", c.ns, "link", "set", c.dev, "up")
		run(t, "ip", "-n", c.ns, "link", "set", "lo", "up")
	}
	return p
}

// ping sends one echo request from A to dst; it may well go unanswered.
func (p *pair) ping(dst netip.Addr) {
	exec.Command("ip", "netns", "exec", p.a, "ping", "-c1", "-W1", dst.String()).Run()
}

// collect reads events until one satisfies done or the time is up.
func collect(t *testing.T, tr *Tracer, done func(Event) bool) []Event {
	t.Helper()
	var evs []Event
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e, ok := <-tr.Events():
			if !ok {
				t.Fatalf("events closed: %v", tr.Err())
			}
			t.Logf("event: %+v", e)
			evs = append(evs, e)
			if done(e) {
				return evs
			}
		case <-timeout:
			t.Fatalf("no matching event within 5s; got %d events", len(evs))
		}
	}
}

func start(t *testing.T, ns string, f filter.Filter) *Tracer {
	t.Helper()
	tr, err := Start(t.Context(), Options{Netns: ns, Filter: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

var handleRE = regexp.MustCompile(`# handle (\d+)`)

func TestNftablesDrop(t *testing.T) {
	p := newPair(t)
	run(t, "ip", "netns", "exec", p.b, "nft", "add table inet usr; add chain inet usr input { type filter hook input priority 0; policy accept; }")
	out := run(t, "ip", "netns", "exec", p.b, "nft", "-e", "-a", "add rule inet usr input icmp type echo-request drop")
	m := handleRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no handle in %q", out)
	}
	handle, _ := strconv.ParseUint(m[1], 10, 64)
	before := run(t, "ip", "netns", "exec", p.b, "nft", "list", "table", "inet", "usr")

	stop := capture(t, p.pathB, "nft-drop")
	tr := start(t, p.pathB, filter.Filter{Saddr: netip.PrefixFrom(p.a4, 32)})
	if got, err := Tables(p.pathB); err != nil || len(got) != 1 || got[0] != "inet "+tr.Table() {
		t.Fatalf("Tables = %q, %v; want [inet %s]", got, err, tr.Table())
	}
	p.ping(p.b4)
	evs := collect(t, tr, func(e Event) bool { return e.Verdict == "drop" })
	stop()
	drop := evs[len(evs)-1]
	want := Event{ID: drop.ID, Family: "inet", Table: "usr", Chain: "input", Handle: handle, Type: "rule", Verdict: "drop", NFProto: "ip",
		Iif: drop.Iif, Mark: 0, Time: drop.Time,
		Packet: Packet{Src: p.a4, Dst: p.b4, Proto: 1, ICMPType: 8, ICMPID: drop.Packet.ICMPID, ICMPSeq: 1}, Rule: "icmp type echo-request drop"}
	if drop != want {
		t.Errorf("drop event\n got %+v\nwant %+v", drop, want)
	}
	if drop.Iif == 0 {
		t.Error("drop event without input interface")
	}
	for _, e := range evs {
		if e.Table == tr.Table() {
			t.Errorf("event of the marking table: %+v", e)
		}
	}
	if after := run(t, "ip", "netns", "exec", p.b, "nft", "list", "table", "inet", "usr"); after != before {
		t.Errorf("user table changed:\n%s\nwas\n%s", after, before)
	}

	// A second Tracer marks IPv6 echo requests, which meet the policy; the
	// first one, tracing IPv4, must not report them although the kernel
	// sends it their events too.
	tr6 := start(t, p.pathB, filter.Filter{Saddr: netip.PrefixFrom(p.a6, 128), Proto: filter.ProtoICMPv6})
	p.ping(p.b6)
	evs = collect(t, tr6, func(e Event) bool { return e.Chain == "input" && e.Type == "policy" && e.Packet.ICMPType == 128 })
	pol := evs[len(evs)-1]
	if pol.Verdict != "accept" || pol.Family != "inet" || pol.NFProto != "ip6" || pol.Packet.Src != p.a6 || pol.Packet.Proto != 58 || pol.Packet.ICMPType != 128 {
		t.Errorf("IPv6 policy event: %+v", pol)
	}
	for {
		select {
		case e := <-tr.Events():
			if e.NFProto == "ip6" {
				t.Errorf("IPv4 tracer got an IPv6 event: %+v", e)
			}
			continue
		default:
		}
		break
	}
}

func TestIptablesNft(t *testing.T) {
	p := newPair(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("iptables not installed")
	}
	if v := run(t, "iptables", "--version"); !strings.Contains(v, "nf_tables") {
		t.Skipf("iptables is not the nf_tables backend: %s", v)
	}
	run(t, "ip", "netns", "exec", p.b, "iptables", "-A", "INPUT", "-p", "icmp", "-j", "DROP")
	stop := capture(t, p.pathB, "iptables-drop")
	tr := start(t, p.pathB, filter.Filter{Addr: netip.PrefixFrom(p.a4, 24).Masked(), Proto: filter.ProtoICMP})
	p.ping(p.b4)
	evs := collect(t, tr, func(e Event) bool { return e.Verdict == "drop" })
	stop()
	e := evs[len(evs)-1]
	if e.Family != "ip" || e.Table != "filter" || e.Chain != "INPUT" || e.Type != "rule" || e.Handle == 0 || e.Packet.Src != p.a4 {
		t.Errorf("drop event: %+v", e)
	}
	if !strings.Contains(e.Rule, "icmp") || !strings.HasSuffix(e.Rule, "drop") {
		t.Errorf("rule text %q: want the iptables rule as nft lists it", e.Rule)
	}
}

func TestTCPPortsIPv6(t *testing.T) {
	p := newPair(t)
	run(t, "ip", "netns", "exec", p.b, "nft", "add table inet usr; add chain inet usr input { type filter hook input priority 0; policy accept; }; add rule inet usr input tcp dport 7 counter reject with tcp reset")
	stop := capture(t, p.pathB, "tcp6-reject")
	tr := start(t, p.pathB, filter.Filter{Daddr: netip.PrefixFrom(p.b6, 128), Dport: 7})
	netns.Do(p.pathA, func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(p.b6, 7).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return nil
	})
	evs := collect(t, tr, func(e Event) bool { return e.Table == "usr" && e.Type == "rule" })
	stop()
	e := evs[len(evs)-1]
	if e.Verdict != "drop" || e.NFProto != "ip6" || e.Packet.Src != p.a6 || e.Packet.Proto != 6 || e.Packet.Dport != 7 || e.Packet.Sport == 0 || e.Iif == 0 {
		t.Errorf("reject event: %+v", e)
	}
	if want := "tcp dport 7 counter reject with tcp reset"; e.Rule != want {
		t.Errorf("rule text %q, want %q (counter values left out)", e.Rule, want)
	}
}

func TestCloseRemovesTable(t *testing.T) {
	p := newPair(t)
	tr := start(t, p.pathB, filter.Filter{Dport: 7, Daddr: netip.MustParsePrefix("198.18.0.0/15")})
	if got, _ := Tables(p.pathB); len(got) != 1 {
		t.Fatalf("Tables while running = %q", got)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-tr.Events(); ok {
		t.Error("events still open after Close")
	}
	waitNoTables(t, p.pathB)
}

func TestKillRemovesTable(t *testing.T) {
	p := newPair(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+p.pathB)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "ready ") {
		t.Fatalf("helper: %q", line)
	}
	name := strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	if got, _ := Tables(p.pathB); len(got) != 1 || got[0] != "inet "+name {
		t.Fatalf("Tables with the helper running = %q, want [inet %s]", got, name)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitNoTables(t, p.pathB)
}

func waitNoTables(t *testing.T, ns string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got, err := Tables(ns)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tables left behind: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRuleTextInNamespace(t *testing.T) {
	p := newPair(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	run(t, "ip", "netns", "exec", p.b, "nft", "add table ip t1; add chain ip t1 c1; add rule ip t1 c1 counter accept")
	out := run(t, "ip", "netns", "exec", p.b, "nft", "-a", "list", "chain", "ip", "t1", "c1")
	h, _ := strconv.ParseUint(handleRE.FindAllStringSubmatch(out, -1)[1][1], 10, 64)
	tr := start(t, p.pathB, filter.Filter{})
	if got := tr.RuleText("ip", "t1", "c1", h); got != "counter accept" {
		t.Errorf("RuleText in the namespace = %q, want %q", got, "counter accept")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err == nil {
		// The chain exists only in B: the current namespace must not answer.
		var cur Tracer
		if got := cur.RuleText("ip", "t1", "c1", h); got != "" {
			t.Errorf("RuleText in the current namespace = %q, want none", got)
		}
	}
}

// capture records the raw NFT_MSG_TRACE payloads in namespace ns until the
// returned function is called, and with -update writes them to
// testdata/NAME-N.bin.
func capture(t *testing.T, ns, name string) (stop func()) {
	if !*update {
		return func() {}
	}
	var c *netlink.Conn
	err := netns.Do(ns, func() error {
		var err error
		if c, err = netlink.Dial(unix.NETLINK_NETFILTER, nil); err != nil {
			return err
		}
		return c.JoinGroup(unix.NFNLGRP_NFTRACE)
	})
	if err != nil {
		t.Fatal(err)
	}
	var msgs [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ms, err := c.Receive()
			if err != nil {
				return
			}
			for _, m := range ms {
				if isTrace(m.Header.Type) {
					msgs = append(msgs, m.Data)
				}
			}
		}
	}()
	return func() {
		time.Sleep(200 * time.Millisecond)
		c.Close()
		<-done
		for i, m := range msgs {
			if err := os.WriteFile(filepath.Join("testdata", fmt.Sprintf("%s-%d.bin", name, i)), m, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
}

// TestMarkingRules checks the marking rules as nft reads them back, and
// that the table is owned and not persistent.
func TestMarkingRules(t *testing.T) {
	p := newPair(t)
	tr := start(t, p.pathB, filter.Filter{Addr: netip.MustParsePrefix("198.18.0.0/15"), Port: 53, Dev: "eth0"})
	out := run(t, "ip", "netns", "exec", p.b, "nft", "list", "table", "inet", tr.Table())
	if !strings.Contains(out, "flags owner") || strings.Contains(out, "persist") {
		t.Errorf("table flags: want owner and not persist:\n%s", out)
	}
	for _, want := range []string{
		"type filter hook prerouting priority raw - 1; policy accept;",
		"type filter hook output priority raw - 1; policy accept;",
		// nft folds the nfproto and l4proto matches into what needs them.
		`iifname "eth0" ip saddr 198.18.0.0/15 tcp sport 53 meta nftrace set 1`,
		`oifname "eth0" ip daddr 198.18.0.0/15 udp dport 53 meta nftrace set 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the table", want)
		}
	}
	if n := strings.Count(out, "nftrace set 1"); n != 16 {
		t.Errorf("%d marking rules, want 16 (2 chains x addr 2 x proto 2 x port 2)", n)
	}
}
