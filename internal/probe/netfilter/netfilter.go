// Package netfilter is the netfilter observer probe source (netfilter.c):
// always-accept BPF netfilter programs placed around the hook functions of
// a namespace's hooks, sharing a tracing session's filter, followed skbs
// and ring buffer. The last observer a dropped packet passed names the hook
// function that took it.
package netfilter

import (
	"errors"
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/netns"
	"github.com/skbtrail/skbtrail/internal/probe"
)

// attachObserver attaches prog at pt. The kernel takes one BPF program per
// hook and priority, so when another observer (a second skbtrail) holds
// the place, the observer moves up, staying below the next hook function:
// anywhere between the two functions sees the same.
func attachObserver(prog *ebpf.Program, pt event.Point) (link.Link, error) {
	for prio := pt.Priority; ; prio++ {
		l, err := link.AttachNetfilter(link.NetfilterOptions{
			Program:        prog,
			ProtocolFamily: link.NetfilterProtocolFamily(pt.Family),
			Hook:           link.NetfilterInetHook(pt.Hook),
			Priority:       prio,
		})
		if err == nil || !errors.Is(err, unix.EBUSY) || prio+1 >= pt.Before || prio-pt.Priority >= 64 {
			return l, err
		}
	}
}

// Plan is where to watch in one network namespace.
type Plan struct {
	Netns  string // namespace file path; "" for the current namespace
	Points []event.Point
}

// Observe attaches netfilter observers at every point of every plan, for
// session s. The observers share the session's filter, followed skbs and ring buffer;
// their events are probe NFObserve, with the hook in aux, the family in
// aux2 and the priority in ret. They are detached with the session.
func Observe(s *probe.Session, plans []Plan) (int, error) {
	// Before 6.4 there are no netfilter programs: say so, rather than let
	// the load fail with EINVAL and blame the verifier.
	if err := features.HaveProgramType(ebpf.Netfilter); err != nil {
		return 0, fmt.Errorf("this kernel has no BPF netfilter programs (Linux 6.4+): %w", err)
	}
	spec, err := loadNetfilter()
	if err != nil {
		return 0, fmt.Errorf("load netfilter observer object: %w", err)
	}
	if err := s.Configure(spec); err != nil {
		return 0, err
	}
	// One program per priority: a program cannot see its own.
	var prios []int32
	for _, p := range plans {
		for _, pt := range p.Points {
			prios = append(prios, pt.Priority)
		}
	}
	slices.Sort(prios)
	prios = slices.Compact(prios)
	progs := map[int32]*ebpf.Program{}
	for _, prio := range prios {
		cs := spec.Copy()
		if err := cs.Variables["priority"].Set(prio); err != nil {
			return 0, err
		}
		coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
			MapReplacements: s.SharedMaps(),
		})
		if err != nil {
			return 0, probe.Explain(err)
		}
		s.Keep(coll)
		progs[prio] = coll.Programs["nf_observe"]
	}
	n := 0
	for _, p := range plans {
		err := netns.Do(p.Netns, func() error {
			for _, pt := range p.Points {
				l, err := attachObserver(progs[pt.Priority], pt)
				if err != nil {
					return fmt.Errorf("attach netfilter observer at %s %s priority %d: %w",
						pt.Family, pt.Hook, pt.Priority, err)
				}
				s.AddLink(l)
				n++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
