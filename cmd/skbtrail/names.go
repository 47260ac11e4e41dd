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

func addNSFlags(fs *pflag.FlagSet, nf *nsFlags) {
	fs.StringVar(&nf.pod, "pod", "", "")
	fs.StringVar(&nf.container, "container", "", "")
	fs.StringVar(&nf.pid, "pid", "", "")
	fs.BoolVar(&nf.current, "netns-current", false, "")
	fs.StringVar(&nf.cri, "cri-endpoint", "", "")
	fs.StringVar(&nf.proc, "host-proc", "", "")
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
