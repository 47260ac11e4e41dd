package filter

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// needRoot skips a test that needs root, or fails it when CI=true.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (CI=true)")
	}
	t.Skip("needs root")
}

func randSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// testNetns is a named network namespace of the test, with a veth pair of
// its own inside, deleted when the test ends.
type testNetns struct {
	name, path string
	ino        uint32
	dev, peer  string // interface names inside
}

func newTestNetns(t *testing.T) testNetns {
	t.Helper()
	needRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command")
	}
	sfx := randSuffix(t)
	ns := testNetns{name: "skbtrail-ft-" + sfx, dev: "skbft" + sfx, peer: "skbfp" + sfx}
	ns.path = filepath.Join("/run/netns", ns.name)
	run(t, "ip", "netns", "add", ns.name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns.name, err, out)
		}
	})
	run(t, "ip", "-n", ns.name, "link", "add", ns.dev, "type", "veth", "peer", "name", ns.peer)
	var st unix.Stat_t
	if err := unix.Stat(ns.path, &st); err != nil {
		t.Fatal(err)
	}
	ns.ino = uint32(st.Ino)
	return ns
}

// homeNetns is the network namespace the test binary started in, read
// before any test could move a thread.
var homeNetns = func() uint32 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		panic(err)
	}
	return uint32(st.Ino)
}()

func selfNetnsInode(t *testing.T) uint32 {
	t.Helper()
	return homeNetns
}

// checkThreadsHome checks that every thread of the process, the main
// thread included, is still in the namespace the process started in:
// parsing changes nothing.
func checkThreadsHome(t *testing.T) {
	t.Helper()
	want := homeNetns
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // the thread ended meanwhile
		}
		if uint32(st.Ino) != want {
			t.Errorf("thread %s is in netns %d, the process started in %d", task.Name(), st.Ino, want)
		}
	}
}

func TestNetnsResolve(t *testing.T) {
	ns := newTestNetns(t)
	self := selfNetnsInode(t)
	ino := strconv.FormatUint(uint64(ns.ino), 10)
	tests := []struct {
		name, netns string
		want        uint32
		str         string
	}{
		{"name", ns.name, ns.ino, "netns " + ns.name + " (" + ino + ")"},
		{"run path", ns.path, ns.ino, "netns " + ns.path + " (" + ino + ")"},
		{"inode", ino, ns.ino, "netns " + ino},
		{"readlink form", "net:[" + ino + "]", ns.ino, "netns net:[" + ino + "] (" + ino + ")"},
		{"proc self", "/proc/self/ns/net", self, fmt.Sprintf("netns /proc/self/ns/net (%d)", self)},
		{"proc pid", fmt.Sprintf("/proc/%d/ns/net", os.Getpid()), self, fmt.Sprintf("netns /proc/%d/ns/net (%d)", os.Getpid(), self)},
		{"current inode", strconv.FormatUint(uint64(self), 10), self, fmt.Sprintf("netns %d", self)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(Options{Netns: tt.netns})
			if err != nil {
				t.Fatal(err)
			}
			if f.Netns != tt.want || f.NetnsName != tt.netns {
				t.Errorf("Netns, NetnsName = %d, %q; want %d, %q", f.Netns, f.NetnsName, tt.want, tt.netns)
			}
			if f.Empty() {
				t.Error("Empty() with a netns")
			}
			if s := f.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
		})
	}
	checkThreadsHome(t)
}

func TestNetnsErrors(t *testing.T) {
	needRoot(t)
	sfx := randSuffix(t)
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "want a name under /run/netns, a path such as /proc/PID/ns/net or /run/netns/NAME, or a network namespace inode number"
	missing := "skbtrail-ft-missing-" + sfx
	tests := []struct {
		name, netns, want string
		cause             error
	}{
		{"missing name", missing, `--netns "` + missing + `": no network namespace named "` + missing + `" under /run/netns (` + want + `)`, nil},
		{"missing path", "/nonexistent/" + sfx, `--netns "/nonexistent/` + sfx + `": no such file (` + want + `)`, fs.ErrNotExist},
		{"missing run path", "/run/netns/" + missing, `--netns "/run/netns/` + missing + `": no such file (` + want + `)`, fs.ErrNotExist},
		{"plain file", plain, `--netns "` + plain + `": not a namespace file (` + want + `)`, nil},
		{"fifo is not opened", fifo, `--netns "` + fifo + `": not a namespace file (` + want + `)`, nil},
		{"directory", dir, `--netns "` + dir + `": not a namespace file (` + want + `)`, nil},
		{"proc ns dir", "/proc/self/ns", `--netns "/proc/self/ns": not a namespace file (` + want + `)`, nil},
		{"mount namespace", "/proc/self/ns/mnt", `--netns "/proc/self/ns/mnt": a mount namespace, not a network namespace (` + want + `)`, nil},
		{"uts namespace", "/proc/self/ns/uts", `--netns "/proc/self/ns/uts": a uts namespace, not a network namespace (` + want + `)`, nil},
		{"dot", ".", `--netns ".": not a namespace name (` + want + `)`, nil},
		{"dotdot", "..", `--netns "..": not a namespace name (` + want + `)`, nil},
		{"unknown inode", "1", `--netns "1": no network namespace with inode 1 (looked under /run/netns and in /proc/*/ns/net; ` + want + `)`, nil},
		{"unknown inode readlink form", "net:[1]", `--netns "net:[1]": no network namespace with inode 1 (looked under /run/netns and in /proc/*/ns/net; ` + want + `)`, nil},
		{"zero inode", "0", `--netns "0": no network namespace with inode 0 (looked under /run/netns and in /proc/*/ns/net; ` + want + `)`, nil},
		{"inode too large", "4294967296", `--netns "4294967296": no network namespace with inode 4294967296 (looked under /run/netns and in /proc/*/ns/net; ` + want + `)`, nil},
		{"inode far too large", "99999999999999999999999", `--netns "99999999999999999999999": no network namespace with inode 99999999999999999999999 (looked under /run/netns and in /proc/*/ns/net; ` + want + `)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(Options{Netns: tt.netns})
			if err == nil {
				t.Fatalf("Parse(netns %q) = %+v, want an error", tt.netns, f)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			checkErr(t, err)
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Errorf("error %q does not wrap %v", err, tt.cause)
			}
		})
	}
}

// A namespace used by no process and not under /run/netns, held only by
// an open file descriptor, is still found by its inode, and --dev is looked
// up in it.
func TestNetnsInodeHeldByFD(t *testing.T) {
	needRoot(t)
	type result struct {
		h   netns.NsHandle
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread stays locked unless it is back home.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{-1, err}
			return
		}
		defer orig.Close()
		h, err := netns.New()
		if err != nil {
			done <- result{-1, err}
			return
		}
		if err := netns.Set(orig); err != nil {
			h.Close()
			done <- result{-1, err}
			return
		}
		runtime.UnlockOSThread()
		done <- result{h, nil}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	h := r.h
	t.Cleanup(func() { h.Close() }) // the last reference: the namespace goes away

	// A link of our own in that namespace.
	nh, err := netlink.NewHandleAt(h, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	dev := "skbfd" + randSuffix(t)
	la := netlink.NewLinkAttrs()
	la.Name = dev
	if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: dev + "p"}); err != nil {
		t.Fatal(err)
	}

	var st unix.Stat_t
	if err := unix.Fstat(int(h), &st); err != nil {
		t.Fatal(err)
	}
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := Parse(Options{Netns: ino, Dev: dev})
	if err != nil {
		t.Fatal(err)
	}
	if f.Netns != uint32(st.Ino) || f.Dev != dev {
		t.Errorf("got %+v, want netns %d dev %s", f, st.Ino, dev)
	}
	// Without --netns the interface is nowhere the tool can see it.
	_, err = Parse(Options{Dev: dev})
	if err == nil || !strings.HasPrefix(err.Error(), `--dev: no interface "`+dev+`" in the current network namespace or under /run/netns: give --netns`) {
		t.Errorf("Parse(dev %s) without netns: %v", dev, err)
	}
	checkThreadsHome(t)
}

func TestDev(t *testing.T) {
	ns := newTestNetns(t)
	ino := strconv.FormatUint(uint64(ns.ino), 10)
	self := selfNetnsInode(t)
	nowhere := "skbno" + randSuffix(t)
	ok := []struct {
		name string
		in   Options
	}{
		{"loopback in current namespace", Options{Dev: "lo"}},
		{"in a named namespace, no netns", Options{Dev: ns.dev}},
		{"peer in a named namespace, no netns", Options{Dev: ns.peer}},
		{"with netns name", Options{Dev: ns.dev, Netns: ns.name}},
		{"with netns path", Options{Dev: ns.peer, Netns: ns.path}},
		{"with netns inode", Options{Dev: ns.dev, Netns: ino}},
		{"lo with netns name", Options{Dev: "lo", Netns: ns.name}},
		{"lo with current netns", Options{Dev: "lo", Netns: "/proc/self/ns/net"}},
		{"with other flags", Options{Dev: ns.dev, Netns: ns.name, Proto: "tcp", Dport: "80", Saddr: "198.18.0.1"}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if f.Dev != tt.in.Dev {
				t.Errorf("Dev = %q, want %q", f.Dev, tt.in.Dev)
			}
			if !strings.Contains(f.String(), "dev "+tt.in.Dev) {
				t.Errorf("String() = %q lacks the device", f.String())
			}
		})
	}

	bad := []struct {
		name string
		in   Options
		want string
	}{
		{"nowhere", Options{Dev: nowhere},
			`--dev: no interface "` + nowhere + `" in the current network namespace or under /run/netns: give --netns`},
		{"not in the given namespace", Options{Dev: nowhere, Netns: ns.name},
			`--dev: no interface "` + nowhere + `" in network namespace ` + ns.name + ` (inode ` + ino + `) (give an interface of that namespace, or leave --netns out to match the name in any namespace)`},
		{"not in the namespace given by inode", Options{Dev: nowhere, Netns: ino},
			`--dev: no interface "` + nowhere + `" in network namespace ` + ino + ` (give an interface of that namespace, or leave --netns out to match the name in any namespace)`},
		{"in another namespace than the given one", Options{Dev: ns.dev, Netns: "/proc/self/ns/net"},
			fmt.Sprintf(`--dev: no interface %q in network namespace /proc/self/ns/net (inode %d) (give an interface of that namespace, or leave --netns out to match the name in any namespace)`, ns.dev, self)},
		{"netns error first", Options{Dev: ns.dev, Netns: "/proc/self/ns/mnt"},
			`--netns "/proc/self/ns/mnt": a mount namespace, not a network namespace (want a name under /run/netns, a path such as /proc/PID/ns/net or /run/netns/NAME, or a network namespace inode number)`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%+v) = %+v, want an error", tt.in, f)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %s\nwant %s", err, tt.want)
			}
			checkErr(t, err)
		})
	}
	checkThreadsHome(t)
}

func TestDevAltName(t *testing.T) {
	ns := newTestNetns(t)
	alt := "skbal" + randSuffix(t)
	if out, err := exec.Command("ip", "-n", ns.name, "link", "property", "add", "dev", ns.dev, "altname", alt).CombinedOutput(); err != nil {
		t.Skipf("no alternative interface names here: %v: %s", err, out)
	}
	want := `--dev "` + alt + `": that is an alternative name of interface "` + ns.dev + `" in network namespace ` + ns.name +
		`; the probes match the interface name (give --dev ` + ns.dev + `)`
	for _, in := range []Options{{Dev: alt}, {Dev: alt, Netns: ns.name}} {
		_, err := Parse(in)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%+v):\n got %v\nwant %s", in, err, want)
			continue
		}
		checkErr(t, err)
	}
}

// Parsing leaves the host as it found it: no namespace, link or thread
// moved. Other programs may change the host meanwhile, so only what this
// package's tests own is compared: our namespaces and the links in ours.
func TestParseChangesNothing(t *testing.T) {
	ns := newTestNetns(t)
	before := hostState(t, ns)
	for i := 0; i < 20; i++ {
		Parse(Options{Dev: ns.dev})
		Parse(Options{Dev: "skbno-nothing"})
		Parse(Options{Dev: "lo", Netns: ns.name})
		Parse(Options{Dev: ns.peer, Netns: strconv.FormatUint(uint64(ns.ino), 10)})
		Parse(Options{Netns: "1"})
	}
	if after := hostState(t, ns); after != before {
		t.Errorf("host changed:\nbefore %s\nafter  %s", before, after)
	}
	checkThreadsHome(t)
}

func hostState(t *testing.T, ns testNetns) string {
	t.Helper()
	var b strings.Builder
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "skbtrail-ft-") {
			b.WriteString(line + "\n")
		}
	}
	out, err = exec.Command("ip", "-n", ns.name, "-o", "link").Output()
	if err != nil {
		t.Fatal(err)
	}
	b.Write(out)
	return b.String()
}
