package names

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/skbtrail/skbtrail/internal/netns"
)

// Proc is a process in a network namespace.
type Proc struct {
	PID       int
	Comm      string
	Cgroup    string    // the cgroup path that names its container, else its v2 path
	Container Container // from Cgroup
}

// perNetns bounds the processes remembered (and read) per namespace: the
// lowest PIDs, which in a container are its init and the pod's sandbox.
const perNetns = 16

// scanProcs finds every process's network namespace under the proc root
// (readlink of PID/ns/net, one per process) and reads comm and cgroup of
// the first perNetns processes, by PID, of each namespace.
func scanProcs(root string) map[uint32][]Proc {
	out := map[uint32][]Proc{}
	for _, pid := range pids(root) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		ino, ok := nsInode(filepath.Join(dir, "ns/net"))
		if !ok || len(out[ino]) >= perNetns {
			continue
		}
		p := Proc{PID: pid}
		if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
			p.Comm = strings.TrimSpace(string(b))
		}
		if f, err := os.Open(filepath.Join(dir, "cgroup")); err == nil {
			p.Cgroup, p.Container = parseProcCgroup(f)
			f.Close()
		}
		out[ino] = append(out[ino], p)
	}
	return out
}

// pids lists the numeric entries of the proc root, in increasing order.
func pids(root string) []int {
	f, err := os.Open(root)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	var out []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	sort.Ints(out)
	return out
}

// nsInode is the inode of a namespace file (netns.Inode), false when it
// cannot be read.
func nsInode(path string) (uint32, bool) {
	n, err := netns.Inode(path)
	return n, err == nil
}
