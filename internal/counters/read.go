package counters

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/skbtrail/skbtrail/internal/netns"
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
	var snap Snapshot
	err := netns.Do(ns, func() (err error) {
		snap, err = readDir(threadNet)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("counters: %w (give a namespace file such as /run/netns/NAME or /proc/PID/ns/net, and run as root)", err)
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
