// Package bench measures what skbtrail costs the host: packets per second
// through a veth pair with and without it, `skbtrail drops` against a
// bpftrace one-liner, the in-kernel cost per drop, time to start, and peak
// memory. They are Go benchmarks, run by bench/run.sh as root; see
// bench/RESULTS.md for the numbers of a run.
//
// Traffic stays in two namespaces the benchmarks create (sbtb-<rand>-a/b,
// 198.19.254.1 <-> 198.19.254.2) and delete at the end, even on failure.
package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	addrA    = "198.19.254.1"
	addrB    = "198.19.254.2"
	noSuch   = "198.19.254.99" // in the filter that matches nothing
	port     = 9               // closed in B: every packet is a NO_SOCKET drop
	batch    = 64              // datagrams per sendmmsg
	readyMax = 30 * time.Second
)

// bpftraceProg is the one-liner of the issue.
const bpftraceProg = `tracepoint:skb:kfree_skb { @[args->reason] = count(); }`

func needRoot(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates namespaces and loads BPF programs")
	}
}

// built is a binary the benchmarks run: $ENV, or built once from pkg.
type built struct {
	env, pkg string
	once     sync.Once
	path     string
	err      error
}

var (
	skbtrailBin = &built{env: "SKBTRAIL_BIN", pkg: "../cmd/skbtrail"}
	floorBin    = &built{env: "FLOOR_BIN", pkg: "./floor"}
)

func (c *built) get(b *testing.B) string {
	c.once.Do(func() {
		if p := os.Getenv(c.env); p != "" {
			c.path, c.err = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "skbtrail-bench-")
		if err != nil {
			c.err = err
			return
		}
		c.path = filepath.Join(dir, filepath.Base(c.pkg))
		out, err := exec.Command("go", "build", "-o", c.path, c.pkg).CombinedOutput()
		if err != nil {
			c.err = fmt.Errorf("go build %s: %v\n%s", c.pkg, err, out)
		}
	})
	if c.err != nil {
		b.Fatal(c.err)
	}
	return c.path
}

// bins are the binaries a mode's argv is made from.
type bins struct{ skbtrail, floor string }

func getBins(b *testing.B) bins { return bins{skbtrailBin.get(b), floorBin.get(b)} }

// ---------------------------------------------------------------------------
// The namespace pair and the flood.

type pair struct{ A, B string }

func newPair(b *testing.B) *pair {
	b.Helper()
	id := fmt.Sprintf("sbtb-%06x", rand.IntN(1<<24))
	p := &pair{A: id + "-a", B: id + "-b"}
	for _, ns := range []string{p.A, p.B} {
		must(b, "ip", "netns", "add", ns)
		b.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	must(b, "ip", "-n", p.A, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", p.B)
	must(b, "ip", "-n", p.A, "addr", "add", addrA+"/24", "dev", "veth-a")
	must(b, "ip", "-n", p.B, "addr", "add", addrB+"/24", "dev", "veth-b")
	for _, s := range [][2]string{{p.A, "veth-a"}, {p.B, "veth-b"}} {
		must(b, "ip", "-n", s[0], "link", "set", "lo", "up")
		must(b, "ip", "-n", s[0], "link", "set", s[1], "up")
	}
	// Resolve B's MAC now, so the flood never waits for ARP.
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("ip", "netns", "exec", p.A, "ping", "-c1", "-W1", addrB).Run() != nil {
		if time.Now().After(deadline) {
			b.Fatalf("no ping from %s to %s", p.A, addrB)
		}
	}
	return p
}

func must(b *testing.B, name string, args ...string) {
	b.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// sender is a UDP socket in A that sends 64-byte datagrams to B's closed
// port with sendmmsg. Every send runs the whole path synchronously (veth
// transmit, B's receive in the softirq on leaving the send), so its rate
// is the stack's rate.
type sender struct {
	fd   int
	hdrs []unix.Mmsghdr
	iov  unix.Iovec
	sa   unix.RawSockaddrInet4
	buf  [64]byte
}

func newSender(b *testing.B, ns string) *sender {
	b.Helper()
	s := &sender{}
	err := inNetns(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		s.fd = fd
		return err
	})
	if err != nil {
		b.Fatalf("socket in %s: %v", ns, err)
	}
	b.Cleanup(func() { unix.Close(s.fd) })
	s.sa.Family = unix.AF_INET
	s.sa.Port = uint16(port<<8 | port>>8)
	copy(s.sa.Addr[:], []byte{198, 19, 254, 2})
	s.iov.Base = &s.buf[0]
	s.iov.SetLen(len(s.buf))
	s.hdrs = make([]unix.Mmsghdr, batch)
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.sa))
		h.Namelen = unix.SizeofSockaddrInet4
		h.Iov = &s.iov
		h.Iovlen = 1
	}
	return s
}

// send sends n datagrams.
func (s *sender) send(b *testing.B, n int) {
	for n > 0 {
		k := min(n, batch)
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.hdrs[0])), uintptr(k), 0, 0, 0)
		if errno != 0 {
			if errno == unix.EINTR || errno == unix.ENOBUFS || errno == unix.EAGAIN {
				continue
			}
			b.Fatalf("sendmmsg: %v", errno)
		}
		n -= int(r)
	}
}

// inNetns runs fn on an OS thread switched into namespace name.
func inNetns(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked if switching back fails: the thread dies
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr != nil {
			errc <- serr
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// noPorts reads Udp NoPorts (datagrams to a closed port) in namespace ns.
func noPorts(b *testing.B, ns string) uint64 {
	b.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	if err != nil {
		b.Fatal(err)
	}
	var head []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "NoPorts" {
				n, _ := strconv.ParseUint(f[i], 10, 64)
				return n
			}
		}
	}
	b.Fatal("no Udp NoPorts in /proc/net/snmp")
	return 0
}

// ---------------------------------------------------------------------------
// The tools under test.

// tool is a running skbtrail or bpftrace.
type tool struct {
	cmd    *exec.Cmd
	stderr *lockedBuf
	done   chan struct{}
	ready  time.Duration // from start to its ready line
}

// lockedBuf keeps a tool's output until it is ready, then discards it
// (trace-match writes an event stream).
type lockedBuf struct {
	mu      sync.Mutex
	b       bytes.Buffer
	discard bool
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.discard {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs argv and waits until its stdout or stderr contains ready.
func start(b *testing.B, ready string, argv ...string) *tool {
	b.Helper()
	t := &tool{cmd: exec.Command(argv[0], argv[1:]...), stderr: &lockedBuf{}, done: make(chan struct{})}
	t.cmd.Stdout, t.cmd.Stderr = t.stderr, t.stderr // output is small: drops tables, bpftrace's map
	t0 := time.Now()
	if err := t.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { t.cmd.Wait(); close(t.done) }()
	b.Cleanup(func() { t.stop(b) })
	for !strings.Contains(t.stderr.String(), ready) {
		select {
		case <-t.done:
			b.Fatalf("%s exited before %q:\n%s", argv[0], ready, t.stderr.String())
		case <-time.After(time.Millisecond):
		}
		if time.Since(t0) > readyMax {
			b.Fatalf("%s not ready after %v:\n%s", argv[0], readyMax, t.stderr.String())
		}
	}
	t.ready = time.Since(t0)
	if argv[0] == "bpftrace" {
		// bpftrace says "Attaching 1 probe..." before it attaches.
		time.Sleep(time.Second)
	}
	t.stderr.mu.Lock()
	t.stderr.discard = true
	t.stderr.mu.Unlock()
	return t
}

// stop sends SIGINT and waits; it returns the peak RSS in KiB.
func (t *tool) stop(b *testing.B) int64 {
	select {
	case <-t.done:
	default:
		t.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-t.done:
		case <-time.After(20 * time.Second):
			t.cmd.Process.Kill()
			<-t.done
		}
	}
	if ru, ok := t.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// mode is one way of running the flood.
type mode struct {
	name  string
	ready string
	argv  func(bin bins) []string // nil: no tool
	floor string                  // the mode whose empty programs attach where this one's do
}

// The floors: the minimal loader (bench/floor) attaching programs that
// return at once where the tools attach theirs. Every tool's cost is given
// as a ratio to its floor's, measured in the same run.
var modes = []mode{
	{name: "none"},
	{name: "floor", ready: "begin trace", argv: func(bin bins) []string {
		return []string{bin.floor}
	}},
	{name: "trace-nomatch", ready: "begin trace", floor: "floor", argv: func(bin bins) []string {
		return []string{bin.skbtrail, "-p", "udp", "-d", noSuch}
	}},
	{name: "trace-match", ready: "begin trace", floor: "floor", argv: func(bin bins) []string {
		return []string{bin.skbtrail, "-p", "udp", "-d", addrB, "--json"}
	}},
	{name: "floor-kfree", ready: "begin trace", argv: func(bin bins) []string {
		return []string{bin.floor, "-t", "kfree_skb"}
	}},
	{name: "drops", ready: "begin trace", floor: "floor-kfree", argv: func(bin bins) []string {
		return []string{bin.skbtrail, "drops", "--json"}
	}},
	{name: "bpftrace", ready: "Attaching 1 probe", floor: "floor-kfree", argv: func(bins) []string {
		return []string{"bpftrace", "-e", bpftraceProg}
	}},
}

func (m mode) skip() bool { return m.name == "bpftrace" && !haveBpftrace() }

var rounds = flag.Int("rounds", 5, "BenchmarkFlood, BenchmarkProgCost, BenchmarkStartup: rounds of all modes, interleaved")

// BenchmarkFlood sends b.N datagrams through the veth pair to B's closed
// port in each mode, in -rounds rounds that run every mode one after the
// other (so that a busy host slows all modes alike), and reports each
// mode's median packets per second (<mode>-pps: the whole trip, send,
// veth, receive, drop, runs on the sending CPU), its loss against no
// tracing (<mode>-loss-%), its throughput as a ratio to its floor's
// (<mode>/floor-pps, the median of the rounds' ratios; >= 1: no slower
// than the empty programs), the tools' peak RSS, and drops/bpftrace, the
// throughput ratio of skbtrail drops to the bpftrace one-liner (>= 1: no
// costlier). Every packet sent is checked to arrive (Udp NoPorts in B).
func BenchmarkFlood(b *testing.B) {
	needRoot(b)
	if firstCall(b) {
		return
	}
	bin := getBins(b)
	ensureTracefs(b)
	p := newPair(b)
	s := newSender(b, p.A)
	s.send(b, 10000) // warm up
	pps := map[string][]float64{}
	rss := map[string]int64{}
	b.ResetTimer()
	for r := 0; r < *rounds; r++ {
		for i := range modes {
			m := modes[(i+r)%len(modes)]
			if m.skip() {
				continue
			}
			b.StopTimer()
			var t *tool
			if m.argv != nil {
				t = start(b, m.ready, m.argv(bin)...)
			}
			before := noPorts(b, p.B)
			b.StartTimer()
			t0 := time.Now()
			s.send(b, b.N)
			el := time.Since(t0)
			b.StopTimer()
			if got := noPorts(b, p.B) - before; got != uint64(b.N) {
				b.Fatalf("%s: %d of %d packets reached B's UDP", m.name, got, b.N)
			}
			pps[m.name] = append(pps[m.name], float64(b.N)/el.Seconds())
			if t != nil {
				rss[m.name] = max(rss[m.name], t.stop(b))
			}
		}
	}
	base := median(pps["none"])
	for _, m := range modes {
		if len(pps[m.name]) == 0 {
			continue
		}
		v := median(pps[m.name])
		b.ReportMetric(v, m.name+"-pps")
		if m.name != "none" {
			b.ReportMetric(100*(1-v/base), m.name+"-loss-%")
			b.ReportMetric(float64(rss[m.name]), m.name+"-maxrss-KiB")
		}
		b.Logf("%-14s pps per round: %.0f", m.name, pps[m.name])
		if f := pps[m.floor]; len(f) > 0 {
			rs := ratios(pps[m.name], f)
			b.ReportMetric(median(rs), m.name+"/floor-pps")
			b.Logf("%-14s pps / %s pps per round: %s", m.name, m.floor, fmtRange(rs))
		}
	}
	if bt := median(pps["bpftrace"]); bt > 0 {
		b.ReportMetric(median(pps["drops"])/bt, "drops/bpftrace")
	}
	b.ReportMetric(0, "ns/op")
}

// firstCall reports the benchmark framework's first call, with b.N = 1,
// made before the one with -test.benchtime's count: the benchmarks here
// start tools for every round, so they do nothing in it. Give them
// -test.benchtime Nx with N > 1.
func firstCall(b *testing.B) bool { return b.N == 1 }

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// ratios divides round by round: rounds ran one mode after the other, so
// a round's two figures saw the same host.
func ratios(xs, ys []float64) []float64 {
	var out []float64
	for i := range xs {
		if i < len(ys) && ys[i] != 0 {
			out = append(out, xs[i]/ys[i])
		}
	}
	return out
}

// fmtRange formats ratios as "median (min-max, n rounds)".
func fmtRange(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return fmt.Sprintf("%.2f (%.2f-%.2f, %d rounds)", median(s), s[0], s[len(s)-1], len(s))
}

// BenchmarkStartup measures the time from starting a command to its
// "begin trace..." line, in -rounds interleaved rounds (ns/op: the
// tracing command's median), with each command's median, skbtrail
// tracing's as a ratio to the minimal loader's (floor: the same
// tracepoints, empty programs), and the idle peak RSS.
func BenchmarkStartup(b *testing.B) {
	needRoot(b)
	if firstCall(b) {
		return
	}
	bin := getBins(b)
	cases := []struct {
		name string
		argv []string
	}{
		{"floor", []string{bin.floor}},
		{"trace", []string{bin.skbtrail, "-p", "udp", "-d", noSuch}},
		{"drops", []string{bin.skbtrail, "drops"}},
		{"floor-kfree", []string{bin.floor, "-t", "kfree_skb"}},
	}
	ms := map[string][]float64{}
	rss := map[string]int64{}
	n := max(b.N, *rounds)
	for i := 0; i < n; i++ {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			t := start(b, "begin trace", c.argv...)
			ms[c.name] = append(ms[c.name], float64(t.ready.Microseconds())/1000)
			rss[c.name] = max(rss[c.name], t.stop(b))
		}
	}
	for _, c := range cases {
		b.ReportMetric(median(ms[c.name]), c.name+"-ms")
		b.ReportMetric(float64(rss[c.name]), c.name+"-maxrss-KiB")
		b.Logf("%-12s ms to ready per round: %.1f", c.name, ms[c.name])
	}
	for _, r := range [][2]string{{"trace", "floor"}, {"drops", "floor-kfree"}} {
		rs := ratios(ms[r[0]], ms[r[1]])
		b.ReportMetric(median(rs), r[0]+"/"+r[1])
		b.Logf("%s / %s start-up per round: %s", r[0], r[1], fmtRange(rs))
	}
	b.ReportMetric(median(ms["trace"])*1e6, "ns/op")
}

// BenchmarkProgCost runs each tool on the same flood of b.N packets with
// kernel.bpf_stats_enabled=1 (restored after) and reports the run time of
// its BPF programs per packet (<mode>-bpf-ns/pkt, from the kernel's own
// accounting: it leaves out the tracepoint's dispatch and the tool's user
// space), the programs run per packet, and each mode's cost as a ratio to
// its floor's (<mode>/floor: the empty programs on the same tracepoints,
// rounds interleaved, the median of the rounds' ratios), and
// drops/bpftrace, skbtrail drops' per-drop cost against the bpftrace
// one-liner's. Unlike packets per second it barely depends on what else
// the host is doing. With -test.v it logs, for the first round, every
// program's runs and ns per packet.
func BenchmarkProgCost(b *testing.B) {
	needRoot(b)
	if firstCall(b) {
		return
	}
	bin := getBins(b)
	ensureTracefs(b)
	old, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	if err != nil {
		b.Skip("no kernel.bpf_stats_enabled")
	}
	if err := os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", []byte("1"), 0); err != nil {
		b.Skipf("enable bpf stats: %v", err)
	}
	b.Cleanup(func() { os.WriteFile("/proc/sys/kernel/bpf_stats_enabled", bytes.TrimSpace(old), 0) })
	p := newPair(b)
	s := newSender(b, p.A)
	s.send(b, 10000)               // warm up
	cost := map[string][]float64{} // BPF ns per packet, per round
	runs := map[string][]float64{}
	b.ResetTimer()
	for r := 0; r < *rounds; r++ {
		for i := range modes {
			m := modes[(i+r)%len(modes)]
			if m.argv == nil || m.skip() {
				continue
			}
			b.StopTimer()
			t := start(b, m.ready, m.argv(bin)...)
			ns0, runs0, _ := progStats(b, t.cmd.Process.Pid)
			b.StartTimer()
			s.send(b, b.N)
			b.StopTimer()
			ns, n, per := progStats(b, t.cmd.Process.Pid)
			t.stop(b)
			ns, n = ns-ns0, n-runs0
			if n == 0 {
				b.Fatalf("%s: its programs did not run", m.name)
			}
			cost[m.name] = append(cost[m.name], float64(ns)/float64(b.N))
			runs[m.name] = append(runs[m.name], float64(n)/float64(b.N))
			if r == 0 {
				for _, pr := range per {
					if pr.RunCnt > 0 {
						b.Logf("%-14s %-16s %6.2f runs/pkt %7.1f ns/run", m.name, pr.Name,
							float64(pr.RunCnt)/float64(b.N), float64(pr.RunTime)/float64(pr.RunCnt))
					}
				}
			}
		}
	}
	for _, m := range modes {
		if len(cost[m.name]) == 0 {
			continue
		}
		b.ReportMetric(median(cost[m.name]), m.name+"-bpf-ns/pkt")
		b.ReportMetric(median(runs[m.name]), m.name+"-runs/pkt")
		b.Logf("%-14s BPF ns per packet per round: %.1f (%.2f programs run per packet)", m.name, cost[m.name], median(runs[m.name]))
		if f := cost[m.floor]; len(f) > 0 {
			rs := ratios(cost[m.name], f)
			b.ReportMetric(median(rs), m.name+"/floor")
			b.Logf("%-14s BPF cost / %s per round: %s", m.name, m.floor, fmtRange(rs))
		}
	}
	if bt := cost["bpftrace"]; len(bt) > 0 && len(cost["drops"]) > 0 {
		rs := ratios(cost["drops"], bt)
		b.ReportMetric(median(rs), "drops/bpftrace")
		b.Logf("drops / bpftrace BPF cost per drop per round: %s", fmtRange(rs))
	}
	b.ReportMetric(0, "ns/op")
}

// progStat is one program's bpf_stats, from bpftool.
type progStat struct {
	ID      uint64 `json:"id"`
	Name    string `json:"name"`
	RunTime uint64 `json:"run_time_ns"`
	RunCnt  uint64 `json:"run_cnt"`
}

// progStats sums run_time_ns and run_cnt of the BPF programs process pid
// holds: the prog_id of its file descriptors (programs and links, from
// /proc/PID/fdinfo), looked up with bpftool. It returns each program's too.
func progStats(b *testing.B, pid int) (ns, runs uint64, per []progStat) {
	b.Helper()
	ids := map[uint64]bool{}
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				if id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
					ids[id] = true
				}
			}
		}
	}
	out, err := exec.Command("bpftool", "prog", "show", "--json").Output()
	if err != nil {
		b.Fatalf("bpftool prog show: %v", err)
	}
	var progs []progStat
	if err := json.Unmarshal(out, &progs); err != nil {
		b.Fatal(err)
	}
	for _, p := range progs {
		if ids[p.ID] {
			ns += p.RunTime
			runs += p.RunCnt
			per = append(per, p)
		}
	}
	return ns, runs, per
}

func haveBpftrace() bool {
	_, err := exec.LookPath("bpftrace")
	return err == nil
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing for bpftrace when it
// is not, and unmounts it afterwards.
func ensureTracefs(b *testing.B) {
	if _, err := os.Stat("/sys/kernel/tracing/events"); err == nil {
		return
	}
	if err := unix.Mount("nodev", "/sys/kernel/tracing", "tracefs", 0, ""); err != nil {
		b.Logf("mount tracefs: %v (bpftrace may fail)", err)
		return
	}
	b.Cleanup(func() { unix.Unmount("/sys/kernel/tracing", 0) })
}
