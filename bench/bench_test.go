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

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// skbtrail returns $SKBTRAIL_BIN or builds ./cmd/skbtrail once.
func skbtrail(b *testing.B) string {
	binOnce.Do(func() {
		if p := os.Getenv("SKBTRAIL_BIN"); p != "" {
			binPath, binErr = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "skbtrail-bench-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "skbtrail")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/skbtrail").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		b.Fatal(binErr)
	}
	return binPath
}

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
	argv  func(bin string) []string // nil: no tool
}

var modes = []mode{
	{name: "none"},
	{name: "trace-nomatch", ready: "begin trace", argv: func(bin string) []string {
		return []string{bin, "-p", "udp", "-d", noSuch}
	}},
	{name: "trace-match", ready: "begin trace", argv: func(bin string) []string {
		return []string{bin, "-p", "udp", "-d", addrB, "--json"}
	}},
	{name: "drops", ready: "begin trace", argv: func(bin string) []string {
		return []string{bin, "drops", "--json"}
	}},
	{name: "bpftrace", ready: "Attaching 1 probe", argv: func(string) []string {
		return []string{"bpftrace", "-e", bpftraceProg}
	}},
}

var rounds = flag.Int("rounds", 5, "BenchmarkFlood: rounds of all modes, interleaved")

// BenchmarkFlood sends b.N datagrams through the veth pair to B's closed
// port in each mode, in -rounds rounds that run every mode one after the
// other (so that a busy host slows all modes alike), and reports each
// mode's median packets per second (<mode>-pps: the whole trip, send,
// veth, receive, drop, runs on the sending CPU), its loss against no
// tracing (<mode>-loss-%), the tools' peak RSS, and drops/bpftrace, the
// throughput ratio of skbtrail drops to the bpftrace one-liner (>= 1: no
// costlier). Every packet sent is checked to arrive (Udp NoPorts in B).
func BenchmarkFlood(b *testing.B) {
	needRoot(b)
	bin := skbtrail(b)
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
			if m.name == "bpftrace" && !haveBpftrace() {
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
	}
	if bt := median(pps["bpftrace"]); bt > 0 {
		b.ReportMetric(median(pps["drops"])/bt, "drops/bpftrace")
	}
	b.ReportMetric(0, "ns/op")
}

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

// BenchmarkStartup measures the time from starting skbtrail to its "begin
// trace..." line (ns/op), and its peak RSS when idle.
func BenchmarkStartup(b *testing.B) {
	needRoot(b)
	bin := skbtrail(b)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"trace", []string{"-p", "udp", "-d", noSuch}},
		{"drops", []string{"drops"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rss int64
			var total time.Duration
			for i := 0; i < b.N; i++ {
				t := start(b, "begin trace", append([]string{bin}, c.args...)...)
				total += t.ready
				rss = max(rss, t.stop(b))
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
			b.ReportMetric(float64(rss), "maxrss-KiB")
		})
	}
}

// BenchmarkProgCost runs each tool on the same flood with
// kernel.bpf_stats_enabled=1 and reports the run time of its BPF programs
// per packet (bpf-ns/pkt, from the kernel's own accounting: it leaves out
// the tracepoint's dispatch and the tool's user space), and drops/bpftrace,
// skbtrail drops' per-drop cost against the bpftrace one-liner's. Unlike
// packets per second it barely depends on what else the host is doing.
func BenchmarkProgCost(b *testing.B) {
	needRoot(b)
	bin := skbtrail(b)
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
	cost := map[string]float64{}
	for _, m := range modes {
		if m.argv == nil || (m.name == "bpftrace" && !haveBpftrace()) {
			continue
		}
		b.Run(m.name, func(b *testing.B) {
			t := start(b, m.ready, m.argv(bin)...)
			b.ResetTimer()
			s.send(b, b.N)
			b.StopTimer()
			ns, runs := progStats(b, t.cmd.Process.Pid)
			t.stop(b)
			if runs == 0 {
				b.Fatalf("%s: its program did not run", m.name)
			}
			cost[m.name] = float64(ns) / float64(runs)
			b.ReportMetric(float64(ns)/float64(b.N), "bpf-ns/pkt")
			b.ReportMetric(float64(runs)/float64(b.N), "runs/pkt")
			b.ReportMetric(0, "ns/op")
		})
	}
	if cost["bpftrace"] > 0 && cost["drops"] > 0 {
		b.Logf("drops/bpftrace BPF run time per drop: %.3f (%.1f ns / %.1f ns)", cost["drops"]/cost["bpftrace"], cost["drops"], cost["bpftrace"])
	}
}

// progStats sums run_time_ns and run_cnt of the BPF programs process pid
// holds: the prog_id of its file descriptors (programs and links, from
// /proc/PID/fdinfo), looked up with bpftool.
func progStats(b *testing.B, pid int) (ns, runs uint64) {
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
	var progs []struct {
		ID      uint64 `json:"id"`
		RunTime uint64 `json:"run_time_ns"`
		RunCnt  uint64 `json:"run_cnt"`
	}
	if err := json.Unmarshal(out, &progs); err != nil {
		b.Fatal(err)
	}
	for _, p := range progs {
		if ids[p.ID] {
			ns += p.RunTime
			runs += p.RunCnt
		}
	}
	return ns, runs
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
