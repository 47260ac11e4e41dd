package names

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Selection is a network namespace chosen by pod, container or process:
// a file that refers to it, its inode, and how to name it in messages.
type Selection struct {
	Path  string
	Inode uint32
	Label string // "pod default/web", "container 3f1c0e6c2b1d", "pid 1234 (nginx)"
}

// Pod finds the namespace of pod "[NAMESPACE/]NAME". A name without a
// namespace must be unique across namespaces.
func (r *Resolver) Pod(ctx context.Context, spec string) (Selection, error) {
	ns, name, hasNS := strings.Cut(spec, "/")
	if !hasNS {
		ns, name = "", spec
	}
	if name == "" {
		return Selection{}, fmt.Errorf("--pod %q: give a pod as NAME or NAMESPACE/NAME", spec)
	}
	if r.cri == nil {
		return Selection{}, fmt.Errorf("--pod %q: no container runtime to ask: %v (give its socket with --cri-endpoint)", spec, r.criErr)
	}
	r.Refresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.podsErr != nil {
		return Selection{}, fmt.Errorf("--pod %q: %w", spec, r.podsErr)
	}
	var hits []Who
	var all []string
	for _, p := range r.pods {
		if p.Ready && p.HostNetwork && p.Name == name && (!hasNS || p.Namespace == ns) {
			for _, w := range r.byIno {
				if w.Host {
					return selection(w, "pod "+p.Namespace+"/"+p.Name+" (host network)")
				}
			}
		}
	}
	for _, w := range r.byIno {
		if w.Pod == "" {
			continue
		}
		all = append(all, w.PodNamespace+"/"+w.Pod)
		if w.Pod == name && (!hasNS || w.PodNamespace == ns) {
			hits = append(hits, w)
		}
	}
	switch len(hits) {
	case 0:
		return Selection{}, fmt.Errorf("--pod %q: no running pod of that name on this node (%s)", spec, listed("pods", all))
	case 1:
		return selection(hits[0], "pod "+hits[0].PodNamespace+"/"+hits[0].Pod)
	}
	var names []string
	for _, h := range hits {
		names = append(names, h.PodNamespace+"/"+h.Pod)
	}
	return Selection{}, fmt.Errorf("--pod %q: pods of that name in several namespaces (%s): give NAMESPACE/NAME", spec, listed("", names))
}

// Container finds the namespace of a container by id (or a prefix of at
// least 4 hex digits, as crictl takes it) or, through the runtime, by name.
func (r *Resolver) Container(ctx context.Context, spec string) (Selection, error) {
	if spec == "" {
		return Selection{}, fmt.Errorf("--container: give a container id or name")
	}
	r.Refresh(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	type hit struct {
		ino   uint32
		label string
	}
	var hits []hit
	seen := map[string]bool{}
	add := func(ino uint32, id, label string) {
		if !seen[id] {
			seen[id] = true
			hits = append(hits, hit{ino, label})
		}
	}
	idPrefix := len(spec) >= 4 && isUUID(spec) && !strings.ContainsAny(spec, "-_")
	var names []string
	for _, p := range r.pods {
		for _, c := range p.Containers {
			names = append(names, c.Name)
			if c.Name != spec && !(idPrefix && strings.HasPrefix(c.ID, spec)) {
				continue
			}
			for ino, w := range r.byIno {
				if w.Pod == p.Name && w.PodNamespace == p.Namespace {
					add(ino, c.ID, "container "+c.Name+" of pod "+p.Namespace+"/"+p.Name)
				}
			}
		}
	}
	for ino, ps := range r.procs {
		for _, p := range ps {
			if id := p.Container.ID; id != "" && idPrefix && strings.HasPrefix(id, spec) {
				add(ino, id, "container "+shortID(id))
			}
		}
	}
	switch {
	case len(hits) == 0:
		where := "in the cgroups of this node's processes"
		if r.cri != nil {
			where = "among this node's containers (" + listed("containers", names) + ")"
		}
		return Selection{}, fmt.Errorf("--container %q: no container with that id or name %s", spec, where)
	case len(hits) > 1:
		sameNS := true
		for _, h := range hits[1:] {
			sameNS = sameNS && h.ino == hits[0].ino
		}
		if !sameNS {
			var ls []string
			for _, h := range hits {
				ls = append(ls, h.label)
			}
			return Selection{}, fmt.Errorf("--container %q: several containers match (%s): give more of the id", spec, listed("", ls))
		}
	}
	return selection(r.byIno[hits[0].ino], hits[0].label)
}

// PID finds the namespace of process pid.
func (r *Resolver) PID(pid string) (Selection, error) {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return Selection{}, fmt.Errorf("--pid %q: give a process id, a number >= 1", pid)
	}
	path := filepath.Join(r.opts.Proc, strconv.Itoa(n), "ns/net")
	ino, ok := nsInode(path)
	if !ok {
		if _, err := os.Stat(filepath.Join(r.opts.Proc, strconv.Itoa(n))); err != nil {
			return Selection{}, fmt.Errorf("--pid %d: no such process", n)
		}
		return Selection{}, fmt.Errorf("--pid %d: cannot read its network namespace (run as root)", n)
	}
	label := "pid " + strconv.Itoa(n)
	if b, err := os.ReadFile(filepath.Join(r.opts.Proc, strconv.Itoa(n), "comm")); err == nil {
		label += " (" + strings.TrimSpace(string(b)) + ")"
	}
	return Selection{Path: path, Inode: ino, Label: label}, nil
}

func selection(w Who, label string) (Selection, error) {
	if w.Path == "" {
		return Selection{}, fmt.Errorf("%s: no file refers to its network namespace (no process of it is visible)", label)
	}
	return Selection{Path: w.Path, Inode: w.Inode, Label: label}, nil
}

func listed(what string, names []string) string {
	if len(names) == 0 {
		if what == "" {
			return "none"
		}
		return "no " + what + " found"
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8:8], fmt.Sprintf("and %d more", len(names)-8))
	}
	if what == "" {
		return strings.Join(names, ", ")
	}
	return what + ": " + strings.Join(names, ", ")
}
