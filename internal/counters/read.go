package counters

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
)

// threadNet is the calling thread's view of /proc/net. /proc/self/net (and
// /proc/net, its link) show the namespace of the process's main thread
// instead, which is wrong on a thread switched into another namespace.
const threadNet = "/proc/thread-self/net"

// source is one file under /proc/net and how to parse it.
type source struct {
	path     string
	parse    func(io.Reader) (Snapshot, error)
	optional bool // absent on some hosts: skipped when it does not exist
}

// stat returns a parse function for a /proc/net/stat file whose counters take
// prefix.
func stat(prefix string) func(io.Reader) (Snapshot, error) {
	return func(r io.Reader) (Snapshot, error) { return ParseStat(r, prefix) }
}

// sources are the files Read reads, relative to /proc/net.
var sources = []source{
	{path: "snmp", parse: ParseSNMP},
	{path: "netstat", parse: ParseSNMP},
	{path: "snmp6", parse: ParseSNMP6, optional: true}, // absent with IPv6 disabled
	{path: "dev", parse: ParseDev},
	{path: "softnet_stat", parse: ParseSoftnet},
	{path: "stat/nf_conntrack", parse: stat("conntrack"), optional: true}, // absent until nf_conntrack is loaded
	{path: "stat/arp_cache", parse: stat("arp"), optional: true},
	{path: "stat/ndisc_cache", parse: stat("ndisc"), optional: true}, // absent with IPv6 disabled
}

// Read returns the counters of the network namespace ns: "" for the namespace
// of the calling thread (the process's, unless the caller has switched its
// locked thread elsewhere), or the path of a namespace file such as
// /run/netns/NAME or /proc/PID/ns/net. Reading another namespace needs
// CAP_SYS_ADMIN.
//
// /proc/net shows the namespace of the process's main thread, whichever
// thread reads it, so Read reads /proc/thread-self/net on an OS thread of its
// own, switched into ns and back. It never moves the caller's thread. The files that exist only with IPv6,
// conntrack or neighbour tables are skipped when absent; the others must be
// there.
func Read(ns string) (Snapshot, error) {
	if ns == "" {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		return readDir(threadNet)
	}
	target, err := netns.GetFromPath(ns)
	if err != nil {
		return nil, fmt.Errorf("counters: open network namespace %s: %w (give a namespace file such as /run/netns/NAME or /proc/PID/ns/net, and run as root)", ns, err)
	}
	defer target.Close()

	type result struct {
		snap Snapshot
		err  error
	}
	done := make(chan result, 1)
	go func() {
		snap, err := readIn(target, ns)
		done <- result{snap, err}
	}()
	r := <-done
	return r.snap, r.err
}

// readIn reads the counters of namespace target (opened from path) on the
// calling goroutine's thread, which it locks and switches into target. It
// must run on a goroutine of its own: when the thread cannot be switched back
// it stays locked, so the Go runtime ends the thread when the goroutine exits
// instead of running other goroutines in the wrong namespace.
func readIn(target netns.NsHandle, path string) (Snapshot, error) {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("counters: open the current network namespace: %w", err)
	}
	defer origin.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("counters: enter network namespace %s: %w (needs CAP_SYS_ADMIN: run as root)", path, err)
	}
	snap, err := readDir(threadNet)
	if errBack := netns.Set(origin); errBack != nil {
		// Leave the thread locked: it dies with this goroutine.
		return nil, errors.Join(err, fmt.Errorf("counters: return to the original network namespace: %w", errBack))
	}
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("%w (in network namespace %s)", err, path)
	}
	return snap, nil
}

// readDir reads and parses every source under dir, a /proc/net directory.
func readDir(dir string) (Snapshot, error) {
	snap := Snapshot{}
	for _, src := range sources {
		file := filepath.Join(dir, src.path)
		f, err := os.Open(file)
		if src.optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("counters: %w (is /proc mounted, and the kernel built with networking?)", err)
		}
		s, err := src.parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("counters: parse %s: %w (the kernel's format changed? please report it with the file attached)", file, err)
		}
		snap.merge(s)
	}
	return snap, nil
}
