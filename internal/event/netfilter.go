package event

import (
	"fmt"
	"math"
)

// Family is a netfilter protocol family (NFPROTO_*, uapi netfilter.h).
type Family uint8

// The netfilter families.
const (
	FamilyUnspec Family = 0
	FamilyInet   Family = 1
	FamilyIPv4   Family = 2
	FamilyARP    Family = 3
	FamilyNetdev Family = 5
	FamilyBridge Family = 7
	FamilyIPv6   Family = 10
)

// String names the family as nft does: ip, ip6, inet, arp, bridge, netdev
// (and unspec for 0).
func (f Family) String() string {
	switch f {
	case FamilyUnspec:
		return "unspec"
	case FamilyInet:
		return "inet"
	case FamilyIPv4:
		return "ip"
	case FamilyARP:
		return "arp"
	case FamilyNetdev:
		return "netdev"
	case FamilyBridge:
		return "bridge"
	case FamilyIPv6:
		return "ip6"
	}
	return fmt.Sprintf("family %d", uint8(f))
}

// Hook is a netfilter hook number (NF_INET_*; for the netdev family 0 is
// ingress and 1 egress).
type Hook uint32

// The IPv4/IPv6 (and bridge) hooks.
const (
	HookPrerouting Hook = iota
	HookInput
	HookForward
	HookOutput
	HookPostrouting
	NumHooks = 5 // hooks of the ip, ip6 and bridge families
)

var hookNames = [NumHooks]string{"prerouting", "input", "forward", "output", "postrouting"}

// String names the hook as nft does ("prerouting").
func (h Hook) String() string {
	if h < NumHooks {
		return hookNames[h]
	}
	return fmt.Sprintf("hook%d", uint32(h))
}

// Chain names the iptables built-in chain of the hook ("PREROUTING").
func (h Hook) Chain() string {
	names := [NumHooks]string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
	if h < NumHooks {
		return names[h]
	}
	return fmt.Sprintf("hook%d", uint32(h))
}

// HookNamed returns the hook nft calls name, and whether there is one.
func HookNamed(name string) (Hook, bool) {
	for i, n := range hookNames {
		if n == name {
			return Hook(i), true
		}
	}
	return 0, false
}

// Verdict is a netfilter verdict (NF_DROP ... NF_STOP); the upper bits of a
// hook function's return carry a queue number or an errno.
type Verdict uint32

// The verdicts.
const (
	VerdictDrop Verdict = iota
	VerdictAccept
	VerdictStolen
	VerdictQueue
	VerdictRepeat
	VerdictStop
)

// String names the verdict ("NF_DROP").
func (v Verdict) String() string {
	names := []string{"NF_DROP", "NF_ACCEPT", "NF_STOLEN", "NF_QUEUE", "NF_REPEAT", "NF_STOP"}
	if int(v&0xff) < len(names) {
		return names[v&0xff]
	}
	return fmt.Sprintf("verdict %d", uint32(v))
}

// FirstPriority is the earliest priority a netfilter observer may take
// (NF_IP_PRI_FIRST itself is refused for BPF links).
const FirstPriority = math.MinInt32 + 1

// Point is one place a netfilter observer watches: a family, a hook, and
// the priority it runs at (just after the hook functions at Priority-1).
type Point struct {
	Family   Family
	Hook     Hook
	Priority int32
	// Before is the priority of the next hook function, if any: an
	// observer may move up to just below it (0: no room to move).
	Before int32
}
