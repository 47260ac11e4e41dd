package counters

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// requireRoot skips a test that creates network namespaces unless it runs as
// root, or CI=true says that it must run (and fail loudly) anyway.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv("CI") != "true" {
		t.Skip("needs root to create network namespaces (set CI=true to run anyway)")
	}
}

// run runs a command and fails the test with its output when it fails.
func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNamespace creates a named network namespace, sbt-cnt-<random>-suffix,
// deleted when the test ends, and returns its name.
func newNamespace(t *testing.T, suffix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "sbt-cnt-" + hex.EncodeToString(b) + "-" + suffix
	// ip netns add, not netns.NewNamed: that one moves the calling thread
	// into the new namespace.
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("delete namespace %s: %v\n%s", name, err, out)
		}
	})
	return name
}

// pair returns two namespaces joined by a veth pair: va in a (198.18.7.1/24,
// fd00:5b7::1/64) and vb in b (198.18.7.2/24, fd00:5b7::2/64).
func pair(t *testing.T) (a, b string) {
	t.Helper()
	a, b = newNamespace(t, "a"), newNamespace(t, "b")
	run(t, "ip", "-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b)
	run(t, "ip", "-n", a, "addr", "add", "198.18.7.1/24", "dev", "va")
	run(t, "ip", "-n", b, "addr", "add", "198.18.7.2/24", "dev", "vb")
	run(t, "ip", "-n", a, "addr", "add", "fd00:5b7::1/64", "dev", "va", "nodad")
	run(t, "ip", "-n", b, "addr", "add", "fd00:5b7::2/64", "dev", "vb", "nodad")
	run(t, "ip", "-n", a, "link", "set", "va", "up")
	run(t, "ip", "-n", b, "link", "set", "vb", "up")
	return a, b
}

// read reads ns's counters and fails the test on an error.
func read(t *testing.T, ns string) Snapshot {
	t.Helper()
	snap, err := Read(ns)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// readCurrent calls Read("") on a thread switched into namespace name, which
// the caller's thread is in for Read; the thread is switched back afterwards.
func readCurrent(t *testing.T, name string) Snapshot {
	t.Helper()
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	snap, err := Read("")
	if err := netns.Set(origin); err != nil {
		t.Fatal(err) // the thread stays locked and ends with the test
	}
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestReadNamespaces checks that Read reads the namespace it is given: UDP
// from a to a closed port on b moves b's Udp NoPorts, and not the current
// namespace's. The current namespace is a third, quiet one, c, which the
// test's thread enters for Read(""), so that traffic of other processes on
// the host cannot move its counters.
func TestReadNamespaces(t *testing.T) {
	requireRoot(t)
	a, b := pair(t)
	c := newNamespace(t, "c")
	pathA, pathB := "/run/netns/"+a, "/run/netns/"+b

	hostBefore, aBefore, bBefore := readCurrent(t, c), read(t, pathA), read(t, pathB)
	for name := range hostBefore {
		if strings.HasPrefix(name, "dev ") && !strings.HasPrefix(name, "dev lo ") {
			t.Errorf("Read(\"\") on a thread in namespace c has %q: c has only lo", name)
		}
	}
	for ns, snap := range map[string]Snapshot{"a": aBefore, "b": bBefore} {
		if _, ok := snap["dev v"+ns+" rx_packets"]; !ok {
			t.Errorf("namespace %s: no counters for its device v%s", ns, ns)
		}
		other := map[string]string{"a": "b", "b": "a"}[ns]
		if _, ok := snap["dev v"+other+" rx_packets"]; ok {
			t.Errorf("namespace %s: counters of v%s, the device in the other namespace", ns, other)
		}
	}

	run(t, "ip", "netns", "exec", a, "bash", "-c", "echo x > /dev/udp/198.18.7.2/9")
	run(t, "ip", "netns", "exec", a, "bash", "-c", "echo x > /dev/udp/fd00:5b7::2/9")

	// b counts the datagram when it arrives after a's ARP/ND query: wait for it.
	var bAfter Snapshot
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		bAfter = read(t, pathB)
		if bAfter["Udp NoPorts"] > bBefore["Udp NoPorts"] && bAfter["Udp6 NoPorts"] > bBefore["Udp6 NoPorts"] || time.Now().After(deadline) {
			break
		}
	}
	hostAfter, aAfter := readCurrent(t, c), read(t, pathA)

	delta := func(before, after Snapshot, name string) int64 { return int64(after[name] - before[name]) }
	for _, c := range []struct {
		ns            string
		before, after Snapshot
		name          string
		want          int64
	}{
		{"b", bBefore, bAfter, "Udp NoPorts", 1},
		{"b", bBefore, bAfter, "Udp6 NoPorts", 1},
		{"a", aBefore, aAfter, "Udp OutDatagrams", 1},
		{"a", aBefore, aAfter, "Udp NoPorts", 0},
		{"b", bBefore, bAfter, "Udp OutDatagrams", 0},
		{"current", hostBefore, hostAfter, "Udp NoPorts", 0},
		{"current", hostBefore, hostAfter, "Udp6 NoPorts", 0},
	} {
		if got := delta(c.before, c.after, c.name); got != c.want {
			t.Errorf("namespace %s: %s moved by %d, want %d", c.ns, c.name, got, c.want)
		}
	}

	notable := map[string]bool{}
	for _, c := range Notable(Diff(bBefore, bAfter)) {
		notable[c.String()] = true
	}
	for _, want := range []string{"Udp NoPorts +1", "Udp6 NoPorts +1", "Icmp OutDestUnreachs +1", "Icmp6 OutDestUnreachs +1"} {
		if !notable[want] {
			t.Errorf("Notable(Diff(b)) = %v, want it to have %q", notable, want)
		}
	}
}

// TestReadProcPID reads a namespace through /proc/PID/ns/net of a process in it.
func TestReadProcPID(t *testing.T) {
	requireRoot(t)
	_, b := pair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", b, "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })

	// ip netns exec enters the namespace, then execs sleep: wait until it has.
	bHandle, err := netns.GetFromName(b)
	if err != nil {
		t.Fatal(err)
	}
	defer bHandle.Close()
	nsPath := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); !sameNamespace(nsPath, bHandle); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not enter namespace %s", cmd.Process.Pid, b)
		}
	}

	snap := read(t, nsPath)
	if _, ok := snap["dev vb rx_packets"]; !ok {
		t.Errorf("Read(%s): no counters of vb, the device of the namespace", nsPath)
	}
}

// TestReadKeepsCallerThread checks that Read leaves the calling thread in its
// namespace, also when entering the namespace fails.
func TestReadKeepsCallerThread(t *testing.T) {
	requireRoot(t)
	a, _ := pair(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	origin, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()

	read(t, "/run/netns/"+a)
	read(t, "")
	for _, bad := range []string{"/nonexistent/sbt-cnt", "/proc/self/ns/mnt"} {
		if _, err := Read(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Read(%q): error %v, want one naming the path", bad, err)
		}
	}
	now, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer now.Close()
	if !now.Equal(origin) {
		t.Errorf("the calling thread moved from namespace %v to %v", origin, now)
	}
}

// TestReadConcurrent reads two namespaces from many goroutines at once: each
// snapshot must hold its own namespace's device and not the other's.
func TestReadConcurrent(t *testing.T) {
	requireRoot(t)
	a, b := pair(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			own, other, ns := "va", "vb", a
			if i%2 == 1 {
				own, other, ns = "vb", "va", b
			}
			snap, err := Read("/run/netns/" + ns)
			switch {
			case err != nil:
				errs <- err
			case !has(snap, "dev "+own+" rx_bytes") || has(snap, "dev "+other+" rx_bytes"):
				errs <- fmt.Errorf("Read(%s) has the counters of another namespace", ns)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// sameNamespace reports whether the namespace file path is the namespace h.
func sameNamespace(path string, h netns.NsHandle) bool {
	p, err := netns.GetFromPath(path)
	if err != nil {
		return false
	}
	defer p.Close()
	return p.Equal(h)
}

func has(s Snapshot, name string) bool { _, ok := s[name]; return ok }
