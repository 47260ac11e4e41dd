package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nsPrefix starts the name of every namespace these tests create:
// sbt-<pid><rand>-a and -b (and -r for a router between them), pid the
// test process's id in 6 hex digits and rand 4 more. At start a run
// deletes the leftovers of interrupted ones: names of exactly that form
// whose process is gone (nsLeftover), so that runs at the same time leave
// each other alone.
const nsPrefix = "sbt-"

var nsLeftover = regexp.MustCompile(`^sbt-([0-9a-f]{6})[0-9a-f]{4}-[abr]$`)

// cmdTimeout bounds every helper command (ip, nft, ping, ...).
var cmdTimeout = scaled(20 * time.Second)

// timeScale multiplies every timeout and every tracing window (--duration,
// --interval) of these tests: $SKBTRAIL_E2E_TIMESCALE if set (test/vm/matrix
// sets it for its emulated guests), else 5 on a CPU QEMU names its own,
// else 1. Under TCG skbtrail takes 6-30s to begin tracing, and a ping or a
// netns exec seconds.
var timeScale = func() float64 {
	if v := os.Getenv("SKBTRAIL_E2E_TIMESCALE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 1 {
			fmt.Fprintf(os.Stderr, "e2e: SKBTRAIL_E2E_TIMESCALE=%q: want a number >= 1\n", v)
			os.Exit(2)
		}
		return f
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && regexp.MustCompile(`(?m)^model name\s*:.*QEMU`).Match(b) {
		return 5
	}
	return 1
}()

// scaled is d times timeScale.
func scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * timeScale).Round(time.Millisecond)
}

// durArg is scaled(d) as a skbtrail --duration or --interval value.
func durArg(d time.Duration) string { return scaled(d).String() }

// kernelAtLeast says whether the running kernel's release is major.minor or
// later, for the few assertions about what older kernels never report.
func kernelAtLeast(major, minor int) bool {
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		return true
	}
	var b []byte
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	var x, y int
	fmt.Sscanf(string(b), "%d.%d", &x, &y)
	return x > major || x == major && y >= minor
}

// ---------------------------------------------------------------------------
// Namespaces

// pair is two network namespaces, A and B, joined by a veth pair.
type pair struct {
	N          int    // subnet number, 0..511
	A, B       string // namespace names
	IfA, IfB   string // the veth ends: IfA in A, IfB in B
	A4, B4     string // 198.18.x.1, 198.18.x.2 (198.19.x.y for N >= 256)
	A6, B6     string // fd00:N::1, fd00:N::2
	InoA, InoB uint64 // namespace inodes, as skbtrail reports them
}

var subnets = struct {
	sync.Mutex
	used map[int]bool
}{used: map[int]bool{}}

// allocSubnet picks an unused subnet number for this test process, so that
// parallel tests (whose skbtrail filters see the whole host) never share
// addresses.
func allocSubnet(t *testing.T) int {
	subnets.Lock()
	defer subnets.Unlock()
	for {
		n := rand.IntN(512)
		if !subnets.used[n] {
			subnets.used[n] = true
			t.Cleanup(func() {
				subnets.Lock()
				delete(subnets.used, n)
				subnets.Unlock()
			})
			return n
		}
	}
}

// newPair creates namespaces sbt-<rand>-a and sbt-<rand>-b joined by a veth
// pair (veth-a in A, veth-b in B) with 198.18.x.1/24, fd00:x::1/64 on A's end
// and .2/::2 on B's, everything up, and waits until the addresses are usable.
// The namespaces (and so the links and any nft tables in them) are deleted
// when the test ends.
func newPair(t *testing.T) *pair {
	t.Helper()
	needRoot(t)
	n := allocSubnet(t)
	id := fmt.Sprintf("%s%06x%04x", nsPrefix, os.Getpid()&0xffffff, rand.IntN(1<<16))
	p := &pair{
		N: n, A: id + "-a", B: id + "-b", IfA: "veth-a", IfB: "veth-b",
		A4: fmt.Sprintf("198.%d.%d.1", 18+n/256, n%256),
		B4: fmt.Sprintf("198.%d.%d.2", 18+n/256, n%256),
		A6: fmt.Sprintf("fd00:%x::1", n),
		B6: fmt.Sprintf("fd00:%x::2", n),
	}
	for _, ns := range []string{p.A, p.B} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := runCmd("ip", "netns", "del", ns); err != nil {
				t.Logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
			}
		})
	}
	// Create the pair inside A with its peer directly in B: nothing ever
	// appears in the host namespace.
	mustRun(t, "ip", "-n", p.A, "link", "add", p.IfA, "type", "veth", "peer", "name", p.IfB, "netns", p.B)
	for _, s := range []struct{ ns, dev, v4, v6 string }{
		{p.A, p.IfA, p.A4, p.A6},
		{p.B, p.IfB, p.B4, p.B6},
	} {
		mustRun(t, "ip", "-n", s.ns, "addr", "add", s.v4+"/24", "dev", s.dev)
		mustRun(t, "ip", "-n", s.ns, "-6", "addr", "add", s.v6+"/64", "dev", s.dev, "nodad")
		mustRun(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
	}
	waitFor(t, 10*time.Second, "veth pair up with usable addresses", func() (bool, string) {
		for _, s := range []struct{ ns, dev string }{{p.A, p.IfA}, {p.B, p.IfB}} {
			out, err := runCmd("ip", "-n", s.ns, "-o", "link", "show", "dev", s.dev)
			if err != nil || !strings.Contains(out, "state UP") {
				return false, fmt.Sprintf("%s/%s: %s", s.ns, s.dev, out)
			}
			out, err = runCmd("ip", "-n", s.ns, "-6", "-o", "addr", "show", "dev", s.dev, "scope", "global", "tentative")
			if err != nil || strings.TrimSpace(out) != "" {
				return false, fmt.Sprintf("%s/%s tentative: %s", s.ns, s.dev, out)
			}
		}
		return true, ""
	})
	p.InoA = nsInode(t, p.A)
	p.InoB = nsInode(t, p.B)
	t.Logf("pair %s/%s: %s %s %s <-> %s %s %s (netns %d <-> %d)",
		p.A, p.B, p.IfA, p.A4, p.A6, p.IfB, p.B4, p.B6, p.InoA, p.InoB)
	return p
}

// warm makes A resolve B's link-layer addresses (one ping each over IPv4
// and IPv6), so that the next packet from A to B is sent at once. Without
// it the first packet waits for ARP/ND, and the kernel sends a clone of it
// with the solicitation (neigh_probe), which is a story of its own.
func (p *pair) warm(t *testing.T) {
	t.Helper()
	mustPing(t, p.A, p.B4)
	mustPing(t, p.A, p.B6)
}

// nsInode returns the inode of the named network namespace.
func nsInode(t *testing.T, name string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	path := filepath.Join("/run/netns", name)
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// sweepLeftovers deletes namespaces left by an earlier, interrupted run.
func sweepLeftovers() {
	for _, ns := range netnsNames() {
		m := nsLeftover.FindStringSubmatch(ns)
		if m == nil {
			continue
		}
		if pid, err := strconv.ParseUint(m[1], 16, 32); err == nil && pid != uint64(os.Getpid()) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				continue // its test process still runs
			}
		}
		if out, err := runCmd("ip", "netns", "del", ns); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: sweeping leftover netns %s: %v: %s\n", ns, err, out)
		} else {
			fmt.Fprintf(os.Stderr, "e2e: deleted leftover netns %s\n", ns)
		}
	}
}

// netnsNames lists the named network namespaces (ip netns list).
func netnsNames() []string {
	out, _ := runCmd("ip", "netns", "list")
	var names []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// ---------------------------------------------------------------------------
// Commands

// runCmd runs a command with a timeout and returns its combined output.
func runCmd(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// mustRun runs a command and fails the test if it fails.
func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := runCmd(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// inNS runs a command in network namespace ns (ip netns exec) and returns its
// combined output.
func inNS(ns string, args ...string) (string, error) {
	return runCmd("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// mustNS runs a command in ns and fails the test if it fails.
func mustNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := inNS(ns, args...)
	if err != nil {
		t.Fatalf("in netns %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// ping sends one echo request from namespace ns to addr and says whether a
// reply came back.
func ping(ns, addr string) (bool, string) {
	out, err := inNS(ns, "ping", "-n", "-c", "1", "-W", "1", addr)
	return err == nil, out
}

// mustPing fails the test unless a ping from ns to addr is answered.
func mustPing(t *testing.T, ns, addr string) {
	t.Helper()
	if ok, out := ping(ns, addr); !ok {
		t.Fatalf("ping from %s to %s failed:\n%s", ns, addr, out)
	}
}

// waitFor polls cond every 20ms until it is true, or fails the test after
// scaled(timeout) with what cond said last.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	timeout = scaled(timeout)
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Running skbtrail

const beginMarker = "begin trace"

// syncBuf is a goroutine-safe buffer that closes seen once it contains
// marker.
type syncBuf struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	seen   chan struct{}
	seenAt time.Time // when marker appeared; valid once seen is closed
	closed bool
}

func newSyncBuf(marker string) *syncBuf {
	return &syncBuf{marker: marker, seen: make(chan struct{})}
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.marker != "" && !b.closed && bytes.Contains(b.buf.Bytes(), []byte(b.marker)) {
		b.seenAt = time.Now()
		close(b.seen)
		b.closed = true
	}
	return n, err
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running skbtrail.
type proc struct {
	t       *testing.T
	args    []string
	cmd     *exec.Cmd
	stdout  *syncBuf
	stderr  *syncBuf
	done    chan struct{} // closed when the process has exited
	err     error         // from cmd.Wait, valid after done
	started time.Time     // when it was started
	began   time.Time     // when it said "begin trace"
}

// run starts skbtrail with args, waits (up to beginWithin) until it says "begin
// trace..." on stderr, and returns it. The process is killed when the test
// ends if it is still running.
func run(t *testing.T, args ...string) *proc {
	t.Helper()
	p := start(t, args...)
	p.waitBegin()
	return p
}

// runAll is run for several commands at once: it starts them all, then
// waits until each has begun tracing, so that their tracing windows overlap
// as much as possible.
func runAll(t *testing.T, argss ...[]string) []*proc {
	t.Helper()
	ps := make([]*proc, len(argss))
	for i, args := range argss {
		ps[i] = start(t, args...)
	}
	for _, p := range ps {
		p.waitBegin()
	}
	return ps
}

// start starts skbtrail with args. The process is killed when the test ends
// if it is still running.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	needBinary(t)
	return startCmd(t, args, exec.Command(binPath, args...))
}

// startCmd is start for a command that runs skbtrail with args another way
// (in a minimal root, say). The process is killed when the test ends if it
// is still running.
func startCmd(t *testing.T, args []string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{
		t:      t,
		args:   args,
		cmd:    cmd,
		stdout: newSyncBuf(""),
		stderr: newSyncBuf(beginMarker),
		done:   make(chan struct{}),
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.name(), err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	p.started = time.Now()
	return p
}

// beginWithin bounds how long skbtrail may take to say "begin trace..."
// after it was started: about a second here, tens under TCG (loading and
// attaching ~130 function probes included).
var beginWithin = scaled(30 * time.Second)

// waitBegin waits (up to beginWithin from the start) until the process says
// "begin trace..." on stderr, and fails the test if it exits before or never
// does.
func (p *proc) waitBegin() {
	p.t.Helper()
	select {
	case <-p.stderr.seen:
		p.began = p.stderr.seenAt
		p.t.Logf("%s: tracing %v after start", p.name(), p.began.Sub(p.started).Round(time.Millisecond))
	case <-p.done:
		p.t.Fatalf("%s exited (%v) before %q:\n%s", p.name(), p.err, beginMarker+"...", p.report())
	case <-time.After(time.Until(p.started.Add(beginWithin))):
		p.t.Fatalf("%s did not say %q within %v:\n%s", p.name(), beginMarker+"...", beginWithin, p.report())
	}
}

func (p *proc) name() string {
	return "skbtrail " + strings.Join(p.args, " ")
}

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name(), err)
	}
}

// inWindow fails the test if more than scaled(d) (less a margin) has passed
// since the process began tracing: a trace run with --duration durArg(d)
// would have stopped before the traffic the test just made, and the test
// would prove nothing.
func (p *proc) inWindow(d time.Duration) {
	p.t.Helper()
	d = scaled(d)
	if since := time.Since(p.began); since > d-500*time.Millisecond {
		p.t.Fatalf("the traffic ended %v after %s began tracing, too late for its --duration %v: the test machine is too slow for this test", since.Round(time.Millisecond), p.name(), d)
	}
}

// waitOutput polls the process's stdout (up to scaled(timeout)) until it
// contains every string in want, and fails the test otherwise.
func (p *proc) waitOutput(timeout time.Duration, want ...string) {
	p.t.Helper()
	timeout = scaled(timeout)
	deadline := time.Now().Add(timeout)
	for {
		out := p.stdout.String()
		var missing []string
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = append(missing, fmt.Sprintf("%q", w))
			}
		}
		if len(missing) == 0 {
			return
		}
		select {
		case <-p.done:
		default:
			if time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
		}
		p.t.Fatalf("%s: stdout has no %s (waited %v or until exit):\n%s", p.name(), strings.Join(missing, ", "), timeout, p.report())
	}
}

// wait waits up to scaled(timeout) for the process to exit and returns its
// stdout, stderr and exit status (-1: killed by a signal). On timeout it
// kills the process and fails the test.
func (p *proc) wait(timeout time.Duration) (stdout, stderr string, code int) {
	p.t.Helper()
	timeout = scaled(timeout)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("%s still running after %v (killed it):\n%s", p.name(), timeout, p.report())
	}
	return p.stdout.String(), p.stderr.String(), p.cmd.ProcessState.ExitCode()
}

// waitOK waits like wait and fails the test unless the exit status is 0.
func (p *proc) waitOK(timeout time.Duration) (stdout, stderr string) {
	p.t.Helper()
	stdout, stderr, code := p.wait(timeout)
	if code != 0 {
		p.t.Fatalf("%s: exit status %d, want 0:\n%s", p.name(), code, p.report())
	}
	return stdout, stderr
}

// report describes the process's output for a failure message: its stderr
// and the tail of its stdout.
func (p *proc) report() string {
	return describeOutput(p.stdout.String(), p.stderr.String())
}

func describeOutput(stdout, stderr string) string {
	return fmt.Sprintf("--- stderr ---\n%s\n--- stdout (tail) ---\n%s\n---", strings.TrimRight(stderr, "\n"), tail(stdout, 40, 6000))
}

// tail returns the last lines lines of s, at most max bytes.
func tail(s string, lines, max int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(empty)"
	}
	l := strings.Split(s, "\n")
	cut := false
	if len(l) > lines {
		l, cut = l[len(l)-lines:], true
	}
	out := strings.Join(l, "\n")
	if len(out) > max {
		out, cut = out[len(out)-max:], true
	}
	if cut {
		out = "[...]\n" + out
	}
	return out
}

// runOnce runs skbtrail with args to completion (scaled 30s at most) and
// returns its stdout, stderr and exit status.
func runOnce(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	needBinary(t)
	limit := scaled(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("skbtrail %s: still running after %v (killed):\n%s", strings.Join(args, " "), limit, describeOutput(o.String(), e.String()))
	}
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("skbtrail %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// ---------------------------------------------------------------------------
// JSON output

// event is one --json event line. Unknown keys are ignored.
type event struct {
	Type     string `json:"type"`
	Time     string `json:"time"`
	Probe    string `json:"probe"`
	Group    string `json:"group"`
	Skb      string `json:"skb"`
	CPU      int    `json:"cpu"`
	PID      int    `json:"pid"`
	Comm     string `json:"comm"`
	Netns    uint64 `json:"netns"`
	Ifindex  int    `json:"ifindex"`
	Ifname   string `json:"ifname"`
	Len      int    `json:"len"`
	Mark     uint32 `json:"mark"`
	Family   string `json:"family"`
	Proto    string `json:"proto"`
	Saddr    string `json:"saddr"`
	Daddr    string `json:"daddr"`
	Sport    int    `json:"sport"`
	Dport    int    `json:"dport"`
	ICMPType *int   `json:"icmp_type"`
	ICMPCode *int   `json:"icmp_code"`
	ICMPID   int    `json:"icmp_id"`
	ICMPSeq  int    `json:"icmp_seq"`
	TCPFlags string `json:"tcp_flags"`
	Reason   string `json:"reason"`
	Location string `json:"location"`

	line string // the raw line, for messages
}

func (e event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s skb=%s netns=%d if=%s", e.Probe, e.Skb, e.Netns, e.Ifname)
	if e.Family != "" {
		fmt.Fprintf(&b, " %s %s %s>%s", e.Family, e.Proto, e.Saddr, e.Daddr)
	}
	if e.Sport != 0 || e.Dport != 0 {
		fmt.Fprintf(&b, " ports %d>%d", e.Sport, e.Dport)
	}
	if e.ICMPType != nil {
		fmt.Fprintf(&b, " icmp_type=%d", *e.ICMPType)
	}
	if e.TCPFlags != "" {
		fmt.Fprintf(&b, " flags=%s", e.TCPFlags)
	}
	if e.Reason != "" || e.Location != "" {
		fmt.Fprintf(&b, " reason=%s at %s", e.Reason, e.Location)
	}
	return b.String()
}

// parseJSON parses --json output: every non-empty line must be a JSON object
// with a "type". It returns the events (type "event"), in order.
func parseJSON(t *testing.T, stdout, stderr string) []event {
	t.Helper()
	var evs []event
	for i, line := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("--json stdout line %d is not a JSON event object (%v):\n%s\n%s", i+1, err, line, describeOutput(stdout, stderr))
		}
		if e.Type == "" {
			t.Fatalf("--json stdout line %d has no \"type\":\n%s\n%s", i+1, line, describeOutput(stdout, stderr))
		}
		if e.Type != "event" {
			continue
		}
		if e.Probe == "" {
			t.Fatalf("--json stdout line %d: event without \"probe\":\n%s", i+1, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Errorf("--json stdout line %d: \"time\" %q is not RFC 3339: %v", i+1, e.Time, err)
		}
		e.line = line
		evs = append(evs, e)
	}
	return evs
}

// dumpEvents formats events for a failure message.
func dumpEvents(evs []event) string {
	if len(evs) == 0 {
		return "(no events)"
	}
	var b strings.Builder
	for i, e := range evs {
		if i == 80 {
			fmt.Fprintf(&b, "  ... %d more\n", len(evs)-i)
			break
		}
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// sameAddr says whether two address strings name the same IP address
// (IPv6 may be spelled in several ways).
func sameAddr(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x == y
}

// unspecified says whether a is 0.0.0.0 or ::.
func unspecified(a string) bool {
	x, err := netip.ParseAddr(a)
	return err == nil && x.IsUnspecified()
}

// icmpType returns the event's ICMP type, or -1 if it has none.
func (e event) icmpType() int {
	if e.ICMPType == nil {
		return -1
	}
	return *e.ICMPType
}

// hasSkb says whether the event names an skb (events of probes that see no
// skb, such as route lookups, have none: "", "-" or 0).
func (e event) hasSkb() bool {
	switch e.Skb {
	case "", "-", "0", "0x0":
		return false
	}
	return true
}

// bySkb groups events by skb address, keeping their order.
func bySkb(evs []event) map[string][]event {
	m := map[string][]event{}
	for _, e := range evs {
		if e.hasSkb() {
			m[e.Skb] = append(m[e.Skb], e)
		}
	}
	return m
}

// skbsOf returns the distinct skbs of the events for which match is true, in
// order of first appearance.
func skbsOf(evs []event, match func(event) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range evs {
		if match(e) && e.hasSkb() && !seen[e.Skb] {
			seen[e.Skb] = true
			out = append(out, e.Skb)
		}
	}
	return out
}

func isXmit(probe string) bool {
	return probe == "net_dev_queue" || probe == "net_dev_start_xmit" || probe == "net_dev_xmit"
}
