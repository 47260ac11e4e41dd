// Package names says who lives in a network namespace, for people: the
// pod (through the container runtime's CRI API), the container (from its
// processes' cgroups), the processes (/proc/PID/ns/net) and the name under
// /run/netns. It is resolved per namespace and cached; a namespace it does
// not know causes at most one new look, in the background, every refresh
// period, never one per event.
package names

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skbtrail/skbtrail/internal/netns"
)

// Who is what is known about one network namespace.
type Who struct {
	Inode     uint32
	Host      bool   // the initial namespace (kernel threads', PID 1's)
	NetnsName string // its name under /run/netns
	// Pod is the pod whose sandbox owns the namespace (CRI).
	Pod, PodNamespace, PodUID string
	// Container names the pod's containers, comma-separated (CRI), or,
	// without a runtime to ask, the short id of the container its first
	// process runs in (cgroup).
	Container   string
	ContainerID string // the full id of the first container found
	PID         int    // the first process in it, by PID; 0 = none seen
	Comm        string
	Path        string // a file that refers to the namespace; "" = unknown
}

// Known says whether anything besides the inode is known.
func (w Who) Known() bool { return w.Short() != "" }

// Short names the namespace for people, the most telling first: "pod
// default/web", "netns blue", "host", "container 3f1c0e6c2b1d", "pid 1234
// nginx"; "" when nothing is known.
func (w Who) Short() string {
	switch {
	case w.Pod != "":
		return "pod " + w.PodNamespace + "/" + w.Pod
	case w.NetnsName != "":
		return "netns " + w.NetnsName
	case w.Host:
		return "host"
	case w.ContainerID != "":
		return "container " + shortID(w.ContainerID)
	case w.PID != 0:
		return "pid " + strconv.Itoa(w.PID) + " " + w.Comm
	}
	return ""
}

// String is Short, or "netns INODE" as the last resort.
func (w Who) String() string {
	if s := w.Short(); s != "" {
		return s
	}
	return "netns " + strconv.FormatUint(uint64(w.Inode), 10)
}

// Enter says how to run a command CMD in the namespace, for advice:
// "nsenter -t 1234 -n CMD (on the node) or kubectl exec -n default web --
// CMD", "ip netns exec blue CMD"; "" for the host or when unknown.
func (w Who) Enter() string {
	var node string
	switch {
	case w.Host:
		return ""
	case w.NetnsName != "":
		node = "`ip netns exec " + w.NetnsName + " CMD`"
	case w.PID != 0:
		node = "`nsenter -t " + strconv.Itoa(w.PID) + " -n CMD`"
	case w.Path != "":
		node = "`nsenter --net=" + w.Path + " CMD`"
	}
	if w.Pod != "" {
		kube := "`kubectl exec -n " + w.PodNamespace + " " + w.Pod + " -- CMD`"
		if node == "" {
			return kube
		}
		return node + " on the node, or " + kube + " where the container has the tool"
	}
	return node
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Options configure a Resolver.
type Options struct {
	// CRIEndpoint is the runtime's socket; "" = the first of Sockets that
	// exists; "none" = do not ask a runtime.
	CRIEndpoint string
	Proc        string        // the host's proc file system; "" = /proc
	Refresh     time.Duration // least time between two looks; 0 = DefaultRefresh
	Log         io.Writer     // where "no runtime" is said, once; nil = nowhere
}

// DefaultRefresh is the least time between two looks at /proc and the
// runtime.
const DefaultRefresh = 5 * time.Second

// Resolver names network namespaces. It is safe for concurrent use.
type Resolver struct {
	opts    Options
	cri     *CRI
	criErr  error // why there is no runtime to ask
	mu      sync.Mutex
	byIno   map[uint32]Who
	pods    []Pod
	procs   map[uint32][]Proc
	last    time.Time // when the last look started or ended
	looking bool      // a look runs in the background
	scans   int
	podsErr error
}

// New looks for the runtime, reads /proc once, and returns the Resolver.
// It fails only when the endpoint given in opts cannot be reached; without
// one and with no socket found it says so once on opts.Log and names
// namespaces by processes and /run/netns names.
func New(ctx context.Context, opts Options) (*Resolver, error) {
	if opts.Proc == "" {
		opts.Proc = "/proc"
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultRefresh
	}
	r := &Resolver{opts: opts}
	switch opts.CRIEndpoint {
	case "none":
		r.criErr = fmt.Errorf("not asked (--cri-endpoint none)")
	case "":
		for _, s := range Sockets {
			if _, err := os.Stat(s); err != nil {
				continue
			}
			if c, err := DialCRI(ctx, s); err == nil {
				r.cri = c
				break
			} else {
				r.criErr = err
			}
		}
		if r.cri == nil {
			if r.criErr == nil {
				r.criErr = fmt.Errorf("no container runtime socket (%s)", strings.Join(Sockets, ", "))
			}
			if opts.Log != nil {
				fmt.Fprintf(opts.Log, "skbtrail: %s\n", r.Notice())
			}
		}
	default:
		c, err := DialCRI(ctx, opts.CRIEndpoint)
		if err != nil {
			return nil, fmt.Errorf("--cri-endpoint: %w (give the runtime's socket, or none)", err)
		}
		r.cri = c
	}
	r.Refresh(ctx)
	return r, nil
}

// Close closes the connection to the runtime.
func (r *Resolver) Close() error {
	if r != nil && r.cri != nil {
		return r.cri.Close()
	}
	return nil
}

// Notice is the one line to say when no runtime is asked (""
// when one is): what names are given instead.
func (r *Resolver) Notice() string {
	if r.cri != nil || r.opts.CRIEndpoint == "none" {
		return ""
	}
	return fmt.Sprintf("%v: namespaces are named by process and /run/netns name, not by pod (--cri-endpoint names a socket)", r.criErr)
}

// Runtime names the runtime asked ("containerd 2.0.0 at /run/...") or
// says why none is.
func (r *Resolver) Runtime() string {
	if r.cri != nil {
		return r.cri.Runtime + " at " + r.cri.Endpoint
	}
	return r.criErr.Error()
}

// Who names the namespace with inode ino from the cache; it never waits
// for /proc or the runtime. An inode the last look did not find starts a
// new look in the background if the last one is older than the refresh
// period; until it is done the namespace is known by its inode.
func (r *Resolver) Who(ino uint32) Who {
	if r == nil {
		return Who{Inode: ino}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.byIno[ino]
	if (!ok || !w.Known()) && !r.looking && time.Since(r.last) >= r.opts.Refresh {
		r.looking = true
		r.last = time.Now()
		go func() {
			v := r.look(context.Background())
			r.mu.Lock()
			r.install(v)
			r.looking = false
			r.mu.Unlock()
		}()
	}
	if !ok {
		w = Who{Inode: ino}
		r.byIno[ino] = w // remembered until the next look
	}
	return w
}

// Scans counts the looks at /proc and the runtime done so far.
func (r *Resolver) Scans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scans
}

// Refresh looks again now and waits for the answer.
func (r *Resolver) Refresh(ctx context.Context) {
	v := r.look(ctx)
	r.mu.Lock()
	r.install(v)
	r.mu.Unlock()
}

// install makes v the cache; r.mu is held.
func (r *Resolver) install(v *view) {
	r.scans++
	r.last = time.Now()
	r.procs, r.pods, r.podsErr, r.byIno = v.procs, v.pods, v.podsErr, v.byIno
}

// view is what one look found.
type view struct {
	procs   map[uint32][]Proc
	pods    []Pod
	podsErr error
	byIno   map[uint32]Who
}

// look reads /run/netns, /proc and the runtime. It holds no lock: it
// reads only what New set.
func (r *Resolver) look(ctx context.Context) *view {
	v := &view{procs: scanProcs(r.opts.Proc)}
	if r.cri != nil {
		v.pods, v.podsErr = r.cri.Pods(ctx)
	}
	m := map[uint32]Who{}
	get := func(ino uint32) Who {
		if w, ok := m[ino]; ok {
			return w
		}
		return Who{Inode: ino}
	}
	// The host's namespace is the one of the kernel's threads (kthreadd,
	// PID 2), else of PID 1.
	host, ok := nsInode(filepath.Join(r.opts.Proc, "2/ns/net"))
	if !ok {
		host, _ = nsInode(filepath.Join(r.opts.Proc, "1/ns/net"))
	}
	for ino, ps := range v.procs {
		w := get(ino)
		w.Host = ino == host
		w.PID, w.Comm = ps[0].PID, ps[0].Comm
		w.Path = filepath.Join(r.opts.Proc, strconv.Itoa(ps[0].PID), "ns/net")
		for _, p := range ps {
			if p.Container.ID != "" {
				w.ContainerID = p.Container.ID
				w.Container = shortID(p.Container.ID)
				break
			}
		}
		m[ino] = w
	}
	for ino, name := range netns.Names() {
		w := get(ino)
		w.NetnsName = name
		if w.Path == "" {
			w.Path = filepath.Join(netns.Dir, name)
		}
		m[ino] = w
	}
	// Pods: by the namespace file the runtime names, else by the
	// containers the namespace's processes run in.
	byContainer := map[string]uint32{}
	for ino, ps := range v.procs {
		for _, p := range ps {
			if p.Container.ID != "" {
				byContainer[p.Container.ID] = ino
			}
		}
	}
	for _, p := range v.pods {
		// A host-network pod's processes are in the host's namespace,
		// which is no pod's.
		if !p.Ready || p.HostNetwork {
			continue
		}
		ino, ok := uint32(0), false
		if p.NetnsPath != "" {
			ino, ok = r.inodeOf(p.NetnsPath)
		}
		if !ok {
			ino, ok = byContainer[p.ID]
		}
		for _, c := range p.Containers {
			if ok {
				break
			}
			ino, ok = byContainer[c.ID]
		}
		if !ok || ino == host {
			continue
		}
		w := get(ino)
		w.Pod, w.PodNamespace, w.PodUID = p.Name, p.Namespace, p.UID
		var cs []string
		for _, c := range p.Containers {
			if c.State == "CONTAINER_RUNNING" || c.State == "" {
				cs = append(cs, c.Name)
			}
		}
		sort.Strings(cs)
		w.Container = strings.Join(cs, ",")
		if len(p.Containers) > 0 && w.ContainerID == "" {
			w.ContainerID = p.Containers[0].ID
		}
		if w.Path == "" {
			w.Path = p.NetnsPath
		}
		m[ino] = w
	}
	v.byIno = m
	return v
}

// inodeOf stats a namespace file the runtime named; a /proc path is read
// under the configured proc root.
func (r *Resolver) inodeOf(path string) (uint32, bool) {
	if rest, ok := strings.CutPrefix(path, "/proc/"); ok && r.opts.Proc != "/proc" {
		path = filepath.Join(r.opts.Proc, rest)
	}
	n, err := netns.Inode(path)
	return n, err == nil
}
