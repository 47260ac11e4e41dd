package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// dropRecord is one `skbtrail drops --json` line ("drop" or "interval").
type dropRecord struct {
	Type     string   `json:"type"`
	Time     string   `json:"time"`
	Reason   string   `json:"reason"`
	Location string   `json:"location"`
	Netns    uint64   `json:"netns"`
	Ifname   string   `json:"ifname"`
	Count    uint64   `json:"count"`
	Total    uint64   `json:"total"`
	Stack    []string `json:"stack"`
	Drops    uint64   `json:"drops"`
}

// parseDrops parses `skbtrail drops --json` output and returns its records.
func parseDrops(t *testing.T, stdout, stderr string) []dropRecord {
	t.Helper()
	var recs []dropRecord
	for i, line := range strings.Split(stdout, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var r dropRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("drops --json line %d is not JSON (%v):\n%s\n%s", i+1, err, line, describeOutput(stdout, stderr))
		}
		if r.Type != "drop" && r.Type != "interval" {
			t.Fatalf("drops --json line %d: type %q, want drop or interval:\n%s", i+1, r.Type, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil {
			t.Errorf("drops --json line %d: time %q is not RFC 3339: %v", i+1, r.Time, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// dropSums sums the "drop" records' counts by reason and location.
func dropSums(recs []dropRecord) (map[string]uint64, uint64) {
	m := map[string]uint64{}
	var all uint64
	for _, r := range recs {
		if r.Type == "drop" {
			m[r.Reason+" at "+r.Location+" in "+fmt.Sprint(r.Netns)+"/"+r.Ifname] += r.Count
			all += r.Count
		}
	}
	return m, all
}

// inNetns runs fn on a thread switched into the named namespace: sockets
// fn creates belong to it.
func inNetns(t *testing.T, name string, fn func() error) error {
	t.Helper()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: if switching back fails, the
		// runtime retires it with the goroutine instead of reusing it.
		runtime.LockOSThread()
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
			errc <- fmt.Errorf("switching back: %v (after %v)", serr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// floodUDP sends n datagrams from namespace ns to addr:port, as fast as
// the socket takes them.
func floodUDP(t *testing.T, ns, addr string, port, n int) {
	t.Helper()
	var conn net.PacketConn
	if err := inNetns(t, ns, func() (err error) {
		conn, err = net.ListenPacket("udp", ":0")
		return err
	}); err != nil {
		t.Fatalf("UDP socket in %s: %v", ns, err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.ParseIP(addr), Port: port}
	payload := make([]byte, 64)
	for i := 0; i < n; i++ {
		if _, err := conn.WriteTo(payload, dst); err != nil {
			t.Fatalf("send %d/%d to %s: %v", i+1, n, dst, err)
		}
	}
}

// scrapeIn fetches url from inside namespace ns and returns the body.
func scrapeIn(t *testing.T, ns, url string) (string, error) {
	t.Helper()
	client := &http.Client{
		Timeout: scaled(5 * time.Second),
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			err = inNetns(t, ns, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}},
	}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// runIn is the harness's run for a skbtrail started in namespace ns (ip
// netns exec), so that what it listens on (--metrics) stays in there.
func runIn(t *testing.T, ns string, args ...string) *proc {
	t.Helper()
	needBinary(t)
	p := &proc{
		t:      t,
		args:   args,
		cmd:    exec.Command("ip", append([]string{"netns", "exec", ns, binPath}, args...)...),
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
	p.waitBegin()
	return p
}

// metricValue finds the sample of metric with all the given labels in a
// Prometheus text exposition and returns its value.
func metricValue(body, metric string, labels map[string]string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
				break
			}
		}
		if ok {
			f := strings.Fields(line)
			return f[len(f)-1], true
		}
	}
	return "", false
}

// Drops scenario 1: a flood of UDP to a closed port in B is counted
// exactly, as NO_SOCKET drops on B's veth in B's namespace, in the --json
// totals and in the metrics a real scrape reads. IPv4 and IPv6 both.
func TestDropsUDPFlood(t *testing.T) {
	needBinary(t)
	t.Parallel()
	const n4, n6 = 3000, 2000
	p := newPair(t)
	p.warm(t) // no neighbor resolution (and its queued clones) during the flood
	port := 20000 + rand.IntN(20000)
	const metricsAddr = "127.0.0.1:9464" // B's own loopback
	args := []string{"drops", "--json", "--interval", "300ms", "--netns", p.B, "-p", "udp", "-D", fmt.Sprint(port), "--metrics", metricsAddr}
	tr := runIn(t, p.B, args...)

	floodUDP(t, p.A, p.B4, port, n4)
	floodUDP(t, p.A, p.B6, port, n6)

	// The JSON totals reach the number sent.
	waitFor(t, 10*time.Second, "drops --json totals to reach the packets sent", func() (bool, string) {
		_, all := dropSums(parseDrops(t, tr.stdout.String(), tr.stderr.String()))
		return all >= n4+n6, fmt.Sprintf("%d of %d counted", all, n4+n6)
	})

	// The metrics say the same: scrape them from inside B.
	var body string
	reason := "NO_SOCKET"
	if !haveReasons {
		reason = "" // before 5.17: told by the locations, __udp4_lib_rcv and __udp6_lib_rcv
	}
	labels := map[string]string{"reason": reason, "netns": fmt.Sprint(p.InoB), "device": p.IfB}
	waitFor(t, 10*time.Second, "skbtrail_drops_total to reach the packets sent", func() (bool, string) {
		var err error
		body, err = scrapeIn(t, p.B, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return false, err.Error()
		}
		var sum uint64
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "skbtrail_drops_total{") {
				var v uint64
				fmt.Sscan(strings.Fields(line)[1], &v)
				sum += v
			}
		}
		return sum == n4+n6, fmt.Sprintf("sum of skbtrail_drops_total = %d, want %d:\n%s", sum, n4+n6, body)
	})
	if _, ok := metricValue(body, "skbtrail_drops_total", labels); !ok {
		t.Errorf("no skbtrail_drops_total with %v in the scrape:\n%s", labels, body)
	}
	for _, m := range []string{"skbtrail_attached_probes", "skbtrail_lost_events_total", "skbtrail_map_full"} {
		if _, ok := metricValue(body, m, nil); !ok {
			t.Errorf("no %s in the scrape:\n%s", m, body)
		}
	}
	if v, _ := metricValue(body, "skbtrail_lost_events_total", nil); v != "0" {
		t.Errorf("skbtrail_lost_events_total = %q, want 0", v)
	}

	tr.signal(syscall.SIGINT)
	stdout, stderr := tr.waitOK(exitWithin)
	recs := parseDrops(t, stdout, stderr)
	sums, all := dropSums(recs)
	if all != n4+n6 {
		t.Errorf("the drop records sum to %d, want exactly %d sent:\n%v\n%s", all, n4+n6, sums, tr.report())
	}
	locs := map[string]bool{}
	for _, r := range recs {
		if r.Type != "drop" {
			continue
		}
		if r.Reason != reason || r.Netns != p.InoB || r.Ifname != p.IfB {
			t.Errorf("drop record for another reason or place (want reason %q in netns %d on %s): %+v", reason, p.InoB, p.IfB, r)
		}
		if !haveReasons && !strings.HasPrefix(r.Location, "__udp4_lib_rcv+") && !strings.HasPrefix(r.Location, "__udp6_lib_rcv+") {
			t.Errorf("without drop reasons, want the drops in __udp4_lib_rcv and __udp6_lib_rcv: %+v", r)
		}
		if r.Location == "" || strings.HasPrefix(r.Location, "0x") {
			t.Errorf("drop location %q is not a kernel symbol", r.Location)
		}
		locs[r.Location] = true
	}
	if len(locs) != 2 {
		t.Errorf("want two drop locations (UDP over IPv4 and IPv6), got %v", locs)
	}
	saysReasons(t, tr.name(), stderr)
	if !strings.Contains(stdout, `"type":"interval"`) {
		t.Errorf("no interval records:\n%s", tr.report())
	}
}

// Drops scenario 2: -c counts intervals; the text table names the drop and
// ends with the totals; --stack shows the dropping function's callers.
func TestDropsCountStackText(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPair(t)
	p.warm(t)
	port := 20000 + rand.IntN(20000)
	tr := run(t, "drops", "-c", "3", "--interval", durArg(time.Second), "--stack", "--netns", p.B, "-p", "udp", "-D", fmt.Sprint(port))
	floodUDP(t, p.A, p.B4, port, 100)
	tr.inWindow(2 * time.Second)
	stdout, stderr := tr.waitOK(exitWithin)
	saysReasons(t, tr.name(), stderr)
	if n := strings.Count(stdout, " (total "); n != 3 {
		t.Errorf("-c 3: %d interval tables, want 3:\n%s", n, tr.report())
	}
	if !strings.Contains(stdout, "total: 100 drops") {
		t.Errorf("no 'total: 100 drops' summary:\n%s", tr.report())
	}
	what := "NO_SOCKET"
	if !haveReasons {
		what = "__udp4_lib_rcv" // before 5.17 the drop is told by its function
	}
	if !strings.Contains(stdout, what) || !strings.Contains(stdout, "ip_local_deliver") {
		t.Errorf("table without %s or a stack through ip_local_deliver:\n%s", what, tr.report())
	}
}

// Drops scenario 3: bad input to drops is one line on stderr and status 2.
func TestDropsBadInput(t *testing.T) {
	needBinary(t)
	t.Parallel()
	for _, args := range [][]string{
		{"drops", "-p", "foo"},
		{"drops", "--interval", "0"},
		{"drops", "--frobnicate"},
		{"drops", "extra"},
		{"--json", "drops"},
		{"drops", "--metrics", "256.1.1.1:x"},
	} {
		stdout, stderr, code := runOnce(t, args...)
		cmd := "skbtrail " + strings.Join(args, " ")
		if code != 2 {
			t.Errorf("%s: exit status %d, want 2\n%s", cmd, code, describeOutput(stdout, stderr))
		}
		if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); strings.TrimSpace(stderr) == "" || len(lines) != 1 {
			t.Errorf("%s: want one line on stderr, got:\n%s", cmd, stderr)
		}
		if stdout != "" {
			t.Errorf("%s: want no stdout, got:\n%s", cmd, stdout)
		}
	}
}
