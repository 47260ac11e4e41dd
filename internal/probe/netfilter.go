package probe

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/netns"
)

// NFObserve is the name of the netfilter observer probe.
const NFObserve = "nf_observe"

// Netfilter families and hooks (include/uapi/linux/netfilter.h).
const (
	NFProtoIPv4 = 2
	NFProtoIPv6 = 10
)

// HookNames are the IPv4/IPv6 netfilter hooks as nft names them, by number.
var HookNames = [...]string{"prerouting", "input", "forward", "output", "postrouting"}

// HookName names hook number h.
func HookName(h uint32) string {
	if int(h) < len(HookNames) {
		return HookNames[h]
	}
	return fmt.Sprintf("hook%d", h)
}

// FamilyName names a netfilter protocol family as nft does.
func FamilyName(pf uint32) string {
	switch pf {
	case NFProtoIPv4:
		return "ip"
	case NFProtoIPv6:
		return "ip6"
	}
	return fmt.Sprintf("family%d", pf)
}

// FirstPriority is the earliest priority an observer may take
// (NF_IP_PRI_FIRST itself is refused for BPF links).
const FirstPriority = math.MinInt32 + 1

// Point is one place an observer watches: a family, a hook, and the
// priority it runs at (just after the hook functions at Priority-1).
type Point struct {
	Family   uint8  // NFProtoIPv4 or NFProtoIPv6
	Hook     uint32 // index into HookNames
	Priority int32
	// Before is the priority of the next hook function, if any: an
	// observer may move up to just below it (0: no room to move).
	Before int32
}

// attachObserver attaches prog at pt. The kernel takes one BPF program per
// hook and priority, so when another observer (a second skbtrail) holds
// the place, the observer moves up, staying below the next hook function:
// anywhere between the two functions sees the same.
func attachObserver(prog *ebpf.Program, pt Point) (link.Link, error) {
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
	Points []Point
}

// Observe attaches netfilter observers at every point of every plan. The
// observers share the session's filter, followed skbs and ring buffer;
// their events are probe NFObserve, with the hook in aux, the family in
// aux2 and the priority in ret. They are detached with the session.
func (s *Session) Observe(plans []Plan) (int, error) {
	// Before 6.4 there are no netfilter programs: say so, rather than let
	// the load fail with EINVAL and blame the verifier.
	if err := features.HaveProgramType(ebpf.Netfilter); err != nil {
		return 0, fmt.Errorf("this kernel has no BPF netfilter programs (Linux 6.4+): %w", err)
	}
	spec, err := loadNetfilter()
	if err != nil {
		return 0, fmt.Errorf("load netfilter observer object: %w", err)
	}
	if err := setup(spec, s.filter, s.opts); err != nil {
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
			MapReplacements: map[string]*ebpf.Map{
				"events":   s.coll.Maps["events"],
				"followed": s.coll.Maps["followed"],
				"lost":     s.coll.Maps["lost"],
			},
		})
		if err != nil {
			return 0, explain(err)
		}
		s.extra = append(s.extra, coll)
		progs[prio] = coll.Programs["nf_observe"]
	}
	n := 0
	for _, p := range plans {
		err := netns.Do(p.Netns, func() error {
			for _, pt := range p.Points {
				l, err := attachObserver(progs[pt.Priority], pt)
				if err != nil {
					return fmt.Errorf("attach netfilter observer at %s %s priority %d: %w",
						FamilyName(uint32(pt.Family)), HookName(pt.Hook), pt.Priority, err)
				}
				s.links = append(s.links, l)
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
