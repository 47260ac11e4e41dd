package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// --diag --json analysis records

// analysis is one {"type":"analysis"} record: the findings about one packet.
type analysis struct {
	Skb      string    `json:"skb"`
	Level    string    `json:"level"`
	Findings []finding `json:"findings"`
}

// finding is one finding of an analysis.
type finding struct {
	Level    string   `json:"level"`
	Message  string   `json:"message"`
	Advice   string   `json:"advice"`
	Probe    string   `json:"probe"`
	Group    string   `json:"group"`
	Reason   string   `json:"reason"`
	Location string   `json:"location"`
	Hook     string   `json:"hook"`
	Family   string   `json:"family"`
	Table    string   `json:"table"`
	Chain    string   `json:"chain"`
	Rule     string   `json:"rule"`
	Blamed   string   `json:"blamed"`
	Netns    uint64   `json:"netns"`
	Code     string   `json:"code"`
	Evidence []string `json:"evidence"`
}

func (f finding) String() string {
	b, _ := json.Marshal(f)
	return string(b)
}

// diagRun is the parsed output of a skbtrail --diag --json run.
type diagRun struct {
	events   []event
	analyses []analysis
	stderr   string
	report   string // the process's output, for failure messages
}

// parseDiag parses --diag --json output: the events (checked as parseJSON
// does) and the analysis records, each of which must have a level and
// findings whose levels are info, warn or error.
func parseDiag(t *testing.T, stdout, stderr string) diagRun {
	t.Helper()
	r := diagRun{events: parseJSON(t, stdout, stderr), stderr: stderr, report: describeOutput(stdout, stderr)}
	for i, line := range strings.Split(stdout, "\n") {
		if !strings.Contains(line, `"type":"analysis"`) {
			continue
		}
		var a analysis
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("--json stdout line %d: bad analysis record (%v):\n%s", i+1, err, line)
		}
		if !validLevel(a.Level) {
			t.Errorf("--json stdout line %d: analysis level %q, want info, warn or error:\n%s", i+1, a.Level, line)
		}
		for _, f := range a.Findings {
			if !validLevel(f.Level) || f.Message == "" {
				t.Errorf("--json stdout line %d: finding without a valid level or a message: %s", i+1, f)
			}
			if f.Code == "" || len(f.Evidence) == 0 {
				t.Errorf("--json stdout line %d: finding without a code or evidence: %s", i+1, f)
			}
		}
		r.analyses = append(r.analyses, a)
	}
	return r
}

func validLevel(l string) bool { return l == "info" || l == "warn" || l == "error" }

// find returns the first finding (of any analysis) for which match is
// true, and the analysis it belongs to.
func (r diagRun) find(match func(finding) bool) (finding, analysis, bool) {
	for _, a := range r.analyses {
		for _, f := range a.Findings {
			if match(f) {
				return f, a, true
			}
		}
	}
	return finding{}, analysis{}, false
}

// mustFind is find that fails the test, with every analysis, when no
// finding matches.
func (r diagRun) mustFind(t *testing.T, what string, match func(finding) bool) (finding, analysis) {
	t.Helper()
	f, a, ok := r.find(match)
	if !ok {
		t.Fatalf("no finding %s in the analyses:\n%s\nevents:\n%s%s", what, r.dump(), dumpEvents(r.events), r.report)
	}
	return f, a
}

// byReason matches drop findings with the given drop reason.
func byReason(reason string) func(finding) bool {
	return func(f finding) bool { return f.Reason == reason }
}

// dump formats the analyses for a failure message.
func (r diagRun) dump() string {
	if len(r.analyses) == 0 {
		return "  (no analysis record)"
	}
	var b strings.Builder
	for _, a := range r.analyses {
		fmt.Fprintf(&b, "  analysis skb=%s level=%s\n", a.Skb, a.Level)
		for _, f := range a.Findings {
			fmt.Fprintf(&b, "    %s\n", f)
		}
	}
	return b.String()
}

// check collects the mismatches of one finding's fields, so that a test
// reports them all at once, with the finding and where to look.
type check struct {
	t    *testing.T
	f    finding
	errs []string
}

func checkFinding(t *testing.T, f finding) *check { return &check{t: t, f: f} }

// eq wants field name to be want.
func (c *check) eq(name, got, want string) *check {
	if got != want {
		c.errs = append(c.errs, fmt.Sprintf("%s %q, want %q", name, got, want))
	}
	return c
}

// has wants field name to contain each of subs.
func (c *check) has(name, got string, subs ...string) *check {
	for _, s := range subs {
		if !strings.Contains(got, s) {
			c.errs = append(c.errs, fmt.Sprintf("%s %q does not contain %q", name, got, s))
		}
	}
	return c
}

// match wants field name to match re.
func (c *check) match(name, got string, re *regexp.Regexp) *check {
	if !re.MatchString(got) {
		c.errs = append(c.errs, fmt.Sprintf("%s %q does not match %s", name, got, re))
	}
	return c
}

// netns wants the finding to be about namespace ino (name for messages).
func (c *check) netns(ino uint64, name string) *check {
	if c.f.Netns != ino {
		c.errs = append(c.errs, fmt.Sprintf("netns %d, want %d (%s)", c.f.Netns, ino, name))
	}
	return c
}

// done fails the test if any check failed.
func (c *check) done(r diagRun) {
	c.t.Helper()
	if len(c.errs) > 0 {
		c.t.Errorf("finding %s:\n  %s\nall analyses:\n%s", c.f, strings.Join(c.errs, "\n  "), r.dump())
	}
}

// diag runs skbtrail --diag --json with args (which must make it stop by
// itself: --diag stops after the first packet with an ERROR, or -c), calls
// traffic once it traces, and returns what it reported.
func diag(t *testing.T, traffic func(), args ...string) diagRun {
	t.Helper()
	tr := run(t, append([]string{"--diag", "--json"}, args...)...)
	traffic()
	stdout, stderr := tr.waitOK(exitWithin)
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "skbtrail: ") {
			t.Logf("%s: %s", tr.name(), line) // warnings explain missing findings
		}
	}
	saysReasons(t, tr.name(), stderr)
	if !slices.Contains(args, "--no-nftrace") {
		saysNFTrace(t, tr.name(), stderr)
	}
	r := parseDiag(t, stdout, stderr)
	if len(r.analyses) == 0 {
		t.Fatalf("%s: no analysis record:\n%s", tr.name(), r.report)
	}
	return r
}

// mustFindDrop finds the drop's kfree_skb finding: by its reason where the
// kernel gives reasons (5.17+), else by the function that dropped the
// packet (fn, a prefix of the location) and an empty reason.
func (r diagRun) mustFindDrop(t *testing.T, reason, fn string) (finding, analysis) {
	t.Helper()
	if haveReasons {
		return r.mustFind(t, "with reason "+reason, byReason(reason))
	}
	return r.mustFind(t, fmt.Sprintf("about the drop in %s (no drop reasons before 5.17: %s is not named)", fn, reason), func(f finding) bool {
		return f.Probe == "kfree_skb" && f.Reason == "" && strings.HasPrefix(f.Location, fn)
	})
}

// unexplained checks a drop finding on a kernel without drop reasons: an
// error that names the function and says the kernel gives no reasons.
func (c *check) unexplained(fn string) *check {
	return c.eq("level", c.f.Level, "error").has("message", c.f.Message, fn, "this kernel gives no drop reasons")
}

// routeRefused checks a drop finding at the routing decision (ip_error) on
// a kernel without drop reasons: an error that says the route lookup for
// dst refused the packet, at ip_error, with the lookup to run in ns.
func (c *check) routeRefused(dst, ns string) *check {
	return c.eq("level", c.f.Level, "error").eq("code", c.f.Code, "route.refused").
		match("location", c.f.Location, regexp.MustCompile(`^ip_error\+0x`)).
		has("message", c.f.Message, "packet dropped at the routing decision (ip_error+", "the route lookup for "+dst+" refused it").
		has("advice", c.f.Advice, "ip route get "+dst, "ip rule show", ns)
}

// observed says whether the run's netfilter observers were in place, so
// that its findings can name the hook and the hook function to blame. Where
// the kernel takes BPF netfilter links (6.4+) they must have been: the run
// must not say they were unavailable. Where it does not (6.1), the run must
// say so in one line, and the caller checks everything but the hook.
func observed(t *testing.T, name, stderr string) bool {
	t.Helper()
	const note = "netfilter observers unavailable"
	n := strings.Count(stderr, note)
	if haveNFLinks(t) {
		if n != 0 {
			t.Errorf("%s: this kernel takes netfilter links (skbtrail check), yet:\n%s", name, stderr)
		}
		return true
	}
	if n != 1 {
		t.Errorf("%s: no netfilter links here (skbtrail check): want one line saying %q, got %d:\n%s", name, note, n, stderr)
	}
	return false
}

// saysNFTrace checks that a --diag run without a rule trace (before 5.12:
// no table can be owned by its socket) said so in one line naming what is
// missing, and that one with it said nothing.
func saysNFTrace(t *testing.T, name, stderr string) {
	t.Helper()
	const note = "no nftables rule trace"
	n := strings.Count(stderr, note)
	if haveNFTrace {
		if n != 0 {
			t.Errorf("%s: the kernel (5.12+) can own an nftables table, yet:\n%s", name, stderr)
		}
		return
	}
	if n != 1 || !strings.Contains(stderr, "NFT_TABLE_F_OWNER needs Linux 5.12") {
		t.Errorf("%s: before 5.12, want one line %q that says NFT_TABLE_F_OWNER needs Linux 5.12, got %d:\n%s", name, note, n, stderr)
	}
}

// ---------------------------------------------------------------------------
// A router between two namespaces

// router is three namespaces in a line, A - R - B, two veth pairs, with A
// and B routing everything through R. R does not forward until told to.
type router struct {
	A, R, B          string // namespace names
	IfA, IfRA        string // the A-R veth pair: IfA in A, IfRA in R
	IfRB, IfB        string // the R-B veth pair
	A4, RA4, RB4, B4 string // A's and B's addresses, R's on each side
	Unrouted         string // an address A routes to R and R has no route for
	InoA, InoR, InoB uint64
}

// subnetAddr is host number h in subnet n (see allocSubnet): 198.18.n.h,
// or 198.19.(n-256).h.
func subnetAddr(n, h int) string {
	return fmt.Sprintf("198.%d.%d.%d", 18+n/256, n%256, h)
}

// newRouter creates the namespaces sbt-<pid><rand>-a, -r and -b, the two
// veth pairs (A 198.18.x.1 - 198.18.x.2 R 198.18.y.1 - 198.18.y.2 B), and
// default routes via R in A and B. Everything is deleted when the test ends.
func newRouter(t *testing.T) *router {
	t.Helper()
	needRoot(t)
	n1, n2, n3 := allocSubnet(t), allocSubnet(t), allocSubnet(t)
	id := fmt.Sprintf("%s%06x%04x", nsPrefix, os.Getpid()&0xffffff, rand.IntN(1<<16))
	r := &router{
		A: id + "-a", R: id + "-r", B: id + "-b",
		IfA: "veth-a", IfRA: "veth-ra", IfRB: "veth-rb", IfB: "veth-b",
		A4: subnetAddr(n1, 1), RA4: subnetAddr(n1, 2), RB4: subnetAddr(n2, 1), B4: subnetAddr(n2, 2),
		Unrouted: subnetAddr(n3, 99),
	}
	for _, ns := range []string{r.A, r.R, r.B} {
		mustRun(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := runCmd("ip", "netns", "del", ns); err != nil {
				t.Logf("cleanup: ip netns del %s: %v: %s", ns, err, out)
			}
		})
		mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	mustRun(t, "ip", "-n", r.A, "link", "add", r.IfA, "type", "veth", "peer", "name", r.IfRA, "netns", r.R)
	mustRun(t, "ip", "-n", r.B, "link", "add", r.IfB, "type", "veth", "peer", "name", r.IfRB, "netns", r.R)
	for _, s := range []struct{ ns, dev, addr string }{
		{r.A, r.IfA, r.A4}, {r.R, r.IfRA, r.RA4}, {r.R, r.IfRB, r.RB4}, {r.B, r.IfB, r.B4},
	} {
		mustRun(t, "ip", "-n", s.ns, "addr", "add", s.addr+"/24", "dev", s.dev)
		mustRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
	}
	mustRun(t, "ip", "-n", r.A, "route", "add", "default", "via", r.RA4)
	mustRun(t, "ip", "-n", r.B, "route", "add", "default", "via", r.RB4)
	r.forward(t, false)
	waitFor(t, 10*time.Second, "router links up", func() (bool, string) {
		for _, s := range []struct{ ns, dev string }{{r.A, r.IfA}, {r.R, r.IfRA}, {r.R, r.IfRB}, {r.B, r.IfB}} {
			out, err := runCmd("ip", "-n", s.ns, "-o", "link", "show", "dev", s.dev)
			if err != nil || !strings.Contains(out, "state UP") {
				return false, fmt.Sprintf("%s/%s: %s", s.ns, s.dev, out)
			}
		}
		return true, ""
	})
	r.InoA, r.InoR, r.InoB = nsInode(t, r.A), nsInode(t, r.R), nsInode(t, r.B)
	// Resolve the neighbours on both links, so that the traced packet is
	// sent at once (see pair.warm).
	mustPing(t, r.A, r.RA4)
	mustPing(t, r.B, r.RB4)
	mustPing(t, r.R, r.B4)
	t.Logf("router %s (%s %s) - %s (%s %s, %s %s) - %s (%s %s); netns %d - %d - %d",
		r.A, r.IfA, r.A4, r.R, r.IfRA, r.RA4, r.IfRB, r.RB4, r.B, r.IfB, r.B4, r.InoA, r.InoR, r.InoB)
	return r
}

// forward turns IPv4 forwarding in R on or off.
func (r *router) forward(t *testing.T, on bool) {
	t.Helper()
	v := "0"
	if on {
		v = "1"
	}
	mustNS(t, r.R, "sysctl", "-qw", "net.ipv4.ip_forward="+v)
}

// ---------------------------------------------------------------------------
// Sockets inside namespaces

// listenTCP listens on addr (host:port) in namespace ns and accepts (and
// closes) connections until the test ends.
func listenTCP(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(t, ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// dialTCP connects from namespace ns to addr (host:port) and closes the
// connection.
func dialTCP(t *testing.T, ns, addr string) error {
	t.Helper()
	var c net.Conn
	err := inNetns(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	if err == nil {
		c.Close()
	}
	return err
}

// udpSink opens a UDP socket on addr (host:port) in namespace ns with the
// smallest receive buffer the kernel allows, which nobody reads, until the
// test ends.
func udpSink(t *testing.T, ns, addr string) {
	t.Helper()
	var conn *net.UDPConn
	if err := inNetns(t, ns, func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		if conn, err = net.ListenUDP("udp", ua); err != nil {
			return err
		}
		return conn.SetReadBuffer(1) // the kernel makes it its minimum
	}); err != nil {
		t.Fatalf("UDP socket on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { conn.Close() })
}

// ---------------------------------------------------------------------------
// What a process leaves behind

// bpfLinks returns the BPF links a process holds, by id, with their type
// as the kernel names it ("netfilter", "raw_tracepoint", "tracing", ...).
func bpfLinks(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	links := map[int]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		var id int
		var typ string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "link_id":
				id, _ = strconv.Atoi(strings.TrimSpace(v))
			case "link_type":
				typ = strings.TrimSpace(v)
			}
		}
		if id != 0 {
			links[id] = typ
		}
	}
	return links, nil
}

// systemLinks returns the ids of every BPF link in the system (bpftool).
func systemLinks(t *testing.T) map[int]bool {
	t.Helper()
	out, err := runCmd("bpftool", "-j", "link", "show")
	if err != nil {
		t.Fatalf("bpftool -j link show: %v\n%s", err, out)
	}
	var links []struct {
		ID int `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("bpftool -j link show: %v\n%s", err, tail(out, 20, 2000))
	}
	ids := map[int]bool{}
	for _, l := range links {
		ids[l.ID] = true
	}
	return ids
}

// nftTables lists the nftables tables of namespace ns ("" for the host's)
// whose name starts with prefix, as "family name".
func nftTables(t *testing.T, ns, prefix string) []string {
	t.Helper()
	var out string
	var err error
	if ns == "" {
		out, err = runCmd("nft", "list", "tables")
	} else {
		out, err = inNS(ns, "nft", "list", "tables")
	}
	if err != nil {
		t.Fatalf("nft list tables in netns %q: %v\n%s", ns, err, out)
	}
	var tables []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line) // table FAMILY NAME
		if len(f) == 3 && f[0] == "table" && strings.HasPrefix(f[2], prefix) {
			tables = append(tables, f[1]+" "+f[2])
		}
	}
	return tables
}
