// Package netns runs code inside network namespaces and finds namespaces by
// inode: what the diagnosis needs to read a namespace's sysctls, addresses
// and counters.
package netns

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/limits"
)

// Dir is where `ip netns` keeps named namespaces.
const Dir = "/run/netns"

// Do runs fn on an OS thread switched into the network namespace at path
// ("" = the current one) and switches back. Files under /proc/thread-self/net
// and /proc/sys/net opened, and sockets created, inside fn belong to that
// namespace. If switching back fails the thread stays locked, so the Go
// runtime discards it and no other goroutine ever runs in the wrong
// namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := vnetns.GetFromPath("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer home.Close()
		target, err := vnetns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		err = fn()
		if unix.Setns(int(home), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Inode returns the inode of the namespace file at path.
func Inode(path string) (uint32, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return uint32(st.Ino), nil
}

// Current returns the inode of the calling thread's network namespace.
func Current() uint32 {
	n, _ := Inode("/proc/thread-self/ns/net")
	return n
}

// List returns the names under /run/netns, sorted. (A name may be a
// leftover of a failed `ip netns add`, not a mounted namespace.)
func List() []string { return listDir(Dir) }

// Names maps the inodes of the namespaces under /run/netns to their names.
func Names() map[uint32]string {
	m := map[uint32]string{}
	for _, name := range List() {
		if n, err := Inode(filepath.Join(Dir, name)); err == nil {
			m[n] = name
		}
	}
	return m
}

var (
	foundMu sync.Mutex
	found   = map[uint32]string{}
	missed  = map[uint32]time.Time{} // Find found nothing, when
)

// Path returns a path that refers to the network namespace with inode n
// ("" for the current namespace, or when none is found), remembering what
// it found.
func Path(n uint32) string {
	if n == 0 || n == Current() {
		return ""
	}
	foundMu.Lock()
	defer foundMu.Unlock()
	if p, ok := found[n]; ok {
		if m, err := Inode(p); err == nil && m == n {
			return p
		}
		delete(found, n)
	}
	// A namespace not found (gone, or held where we cannot see) is not
	// looked for again at once: Find walks all of /proc.
	now := time.Now()
	if at, ok := missed[n]; ok && now.Sub(at) < retryMissed {
		return ""
	}
	delete(missed, n)
	if !Lookups.Allow() {
		return ""
	}
	p := find(n)
	if p == "" {
		if len(missed) >= ResolvedLimit.Max {
			ResolvedLimit.Hit()
			clear(missed)
		}
		missed[n] = now
		return ""
	}
	if len(found) >= ResolvedLimit.Max {
		// Forget them all rather than grow: the ones still in use are
		// found again.
		ResolvedLimit.Hit()
		clear(found)
	}
	found[n] = p
	return p
}

// find is Find; tests replace it.
var find = Find

// retryMissed is how long a namespace Find did not find is not looked for.
const retryMissed = 5 * time.Second

// The bounds of namespace resolution.
var (
	ResolvedLimit = limits.New("namespaces resolved", 4096, "", "namespace paths forgotten (looked up again when needed)")
	Lookups       = limits.NewRate("namespace searches of /proc", 20, "namespaces left unresolved (shown by inode)",
		func() int64 { return time.Now().UnixNano() })
)

// Find looks for a network namespace with inode n and returns a path that
// refers to it, or "". It looks, in order, at /run/netns/*, at every
// process's and thread's /proc/PID[/task/TID]/ns/net, and at open file
// descriptors (/proc/PID/fd/*) that hold a network namespace. Without root
// only the caller's own processes can be seen.
func Find(n uint32) string {
	// Every nsfs inode lives on one device: the one of our own namespace.
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return ""
	}
	match := func(path string) bool {
		var st unix.Stat_t
		return unix.Stat(path, &st) == nil && st.Dev == self.Dev && st.Ino == uint64(n)
	}
	if match("/proc/self/ns/net") {
		return "/proc/self/ns/net"
	}
	if match("/proc/thread-self/ns/net") {
		return "/proc/thread-self/ns/net"
	}
	for _, name := range listDir(Dir) {
		path := filepath.Join(Dir, name)
		if match(path) {
			return path
		}
	}
	pids := listPids("/proc")
	for _, pid := range pids {
		path := "/proc/" + pid + "/ns/net"
		if match(path) {
			return path
		}
	}
	// A thread may have moved to another namespace than its process.
	for _, pid := range pids {
		for _, tid := range listPids("/proc/" + pid + "/task") {
			path := "/proc/" + pid + "/task/" + tid + "/ns/net"
			if match(path) {
				return path
			}
		}
	}
	// A namespace may be held only by an open file descriptor.
	want := "net:[" + strconv.FormatUint(uint64(n), 10) + "]"
	for _, pid := range pids {
		dir := "/proc/" + pid + "/fd"
		for _, fd := range listDir(dir) {
			path := dir + "/" + fd
			if link, err := os.Readlink(path); err == nil && link == want && match(path) {
				return path
			}
		}
	}
	return ""
}

func listDir(dir string) []string {
	f, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	sort.Strings(names)
	return names
}

func listPids(dir string) []string {
	var pids []string
	for _, name := range listDir(dir) {
		if _, err := strconv.Atoi(name); err == nil {
			pids = append(pids, name)
		}
	}
	return pids
}
