package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/names"
)

// nsFlags choose the traced namespace by who lives in it, and say how to
// ask the container runtime.
type nsFlags struct {
	pod, container, pid string
	current             bool
	cri                 string
	proc                string // the host's /proc (--host-proc)
}

// addNSFlags registers the namespace selectors in help group Filter and
// how names are found in group Running; tracing and drops share them.
func addNSFlags(fs *pflag.FlagSet, nf *nsFlags) {
	g := flagGroup{fs, groupFilter}
	g.String(&nf.pod, "pod", "", "", "[NS/]NAME", "only packets in this pod's network namespace "+
		"(asks the container runtime: --cri-endpoint)")
	g.String(&nf.container, "container", "", "", "ID|NAME", "only packets in this container's network "+
		"namespace: an id or its prefix, or a name")
	g.String(&nf.pid, "pid", "", "", "PID", "only packets in this process's network namespace")
	g.Bool(&nf.current, "netns-current", "", "only packets in skbtrail's own network namespace")
	g = flagGroup{fs, groupRunning}
	g.String(&nf.cri, "cri-endpoint", "", "", "SOCK", "the container runtime's CRI socket, to name pods "+
		"(by default /run/containerd/containerd.sock or /run/crio/crio.sock if there; none: do not ask)")
	g.String(&nf.proc, "host-proc", "", "", "DIR", "the host's /proc mounted at DIR, to find the processes "+
		"of each namespace when skbtrail runs in a container without the host's PID namespace")
}

// check refuses two ways of choosing the namespace; it touches nothing.
func (nf nsFlags) check(o filter.Options) error {
	var given []string
	for _, g := range []struct {
		flag string
		on   bool
	}{{"--netns", o.Netns != ""}, {"--pod", nf.pod != ""}, {"--container", nf.container != ""},
		{"--pid", nf.pid != ""}, {"--netns-current", nf.current}} {
		if g.on {
			given = append(given, g.flag)
		}
	}
	if len(given) > 1 {
		return usageError{fmt.Errorf("%s and %s both choose the network namespace: give one", given[0], given[1])}
	}
	return nil
}

// resolve opens the resolver of namespace names (the runtime's CRI socket,
// /proc, /run/netns) and turns --pod, --container, --pid and
// --netns-current into o.Netns. A name that matches nothing is bad input.
func (nf nsFlags) resolve(ctx context.Context, o *filter.Options) (*names.Resolver, error) {
	if nf.proc != "" {
		if _, err := os.Stat(nf.proc + "/self/ns/net"); err != nil {
			return nil, usageError{fmt.Errorf("--host-proc %q: not a proc file system (%v)", nf.proc, err)}
		}
	}
	r, err := names.New(ctx, names.Options{CRIEndpoint: nf.cri, Proc: nf.proc})
	if err != nil {
		return nil, usageError{err}
	}
	var sel names.Selection
	switch {
	case nf.pod != "":
		sel, err = r.Pod(ctx, nf.pod)
	case nf.container != "":
		sel, err = r.Container(ctx, nf.container)
	case nf.pid != "":
		sel, err = r.PID(nf.pid)
	case nf.current:
		sel = names.Selection{Path: "/proc/self/ns/net", Label: "the current netns"}
	default:
		return r, nil
	}
	if err != nil {
		r.Close()
		return nil, usageError{err}
	}
	o.Netns, o.NetnsLabel = sel.Path, sel.Label
	return r, nil
}
