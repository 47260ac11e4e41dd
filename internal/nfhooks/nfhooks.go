// Package nfhooks lists the netfilter hook functions registered in a
// network namespace at the IPv4 and IPv6 hooks (nftables base chains,
// iptables-legacy tables, connection tracking), so that observers can be
// placed between them and a netfilter drop blamed on one of them.
package nfhooks

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/netns"
)

// Fn is a hook function known to run at a hook.
type Fn struct {
	Family   event.Family // FamilyIPv4 or FamilyIPv6
	Hook     event.Hook
	Priority int32
	Name     string // "nftables chain inet usr input", "iptables filter table", ...

	// For nftables chains (iptables-nft tables are nftables chains too):
	Table, Chain, TableFamily string
}

// List returns the hook functions registered in the namespace at path
// ("" = the current one), sorted by family, hook and priority. It reads
// the nftables base chains over netlink, and /proc for iptables-legacy
// tables and connection tracking.
//
// The kernel's list of hook entries (nfnetlink_hook) would name every
// function, but many kernels do not have it; what this finds covers the
// functions that drop packets.
func List(path string) ([]Fn, error) {
	var fns []Fn
	err := netns.Do(path, func() error {
		chains, err := nftChains()
		if err != nil {
			return err
		}
		fns = append(fns, chains...)
		fns = append(fns, legacyTables()...)
		fns = append(fns, conntrack()...)
		return nil
	})
	slices.SortStableFunc(fns, func(a, b Fn) int {
		if a.Family != b.Family {
			return int(a.Family) - int(b.Family)
		}
		if a.Hook != b.Hook {
			return int(a.Hook) - int(b.Hook)
		}
		switch {
		case a.Priority < b.Priority:
			return -1
		case a.Priority > b.Priority:
			return 1
		}
		return 0
	})
	return fns, err
}

// nftChains lists the base chains at the IPv4/IPv6 hooks of the calling
// thread's namespace.
func nftChains() ([]Fn, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables netlink: %w", err)
	}
	chains, err := c.ListChains()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // nf_tables not loaded: no chains
		}
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []Fn
	for _, ch := range chains {
		if ch.Hooknum == nil || ch.Priority == nil || ch.Table == nil {
			continue // a regular chain: not at a hook
		}
		var fams []event.Family
		switch ch.Table.Family {
		case nftables.TableFamilyIPv4:
			fams = []event.Family{event.FamilyIPv4}
		case nftables.TableFamilyIPv6:
			fams = []event.Family{event.FamilyIPv6}
		case nftables.TableFamilyINet:
			fams = []event.Family{event.FamilyIPv4, event.FamilyIPv6}
		default:
			continue
		}
		tf := event.Family(ch.Table.Family).String() // TableFamily values are NFPROTO_*
		for _, f := range fams {
			out = append(out, Fn{
				Family: f, Hook: event.Hook(*ch.Hooknum), Priority: int32(*ch.Priority),
				Name:  fmt.Sprintf("nftables chain %s %s %s", tf, ch.Table.Name, ch.Name),
				Table: ch.Table.Name, Chain: ch.Name, TableFamily: tf,
			})
		}
	}
	return out, nil
}

// legacyHooks are where each iptables-legacy table registers, with its
// priority: the kernel's NF_IP_PRI_* values for the tables in
// net/ipv4/netfilter/iptable_*.c.
var legacyHooks = map[string][]struct {
	hook event.Hook
	prio int32
}{
	"raw":      {{0, -300}, {3, -300}},
	"mangle":   {{0, -150}, {1, -150}, {2, -150}, {3, -150}, {4, -150}},
	"nat":      {{0, -100}, {3, -100}, {1, 100}, {4, 100}},
	"filter":   {{1, 0}, {2, 0}, {3, 0}},
	"security": {{1, 50}, {2, 50}, {3, 50}},
}

// legacyTables reads which iptables-legacy tables the namespace has.
func legacyTables() []Fn {
	var out []Fn
	for _, f := range []struct {
		file, tool string
		fam        event.Family
	}{{"ip_tables_names", "iptables", event.FamilyIPv4}, {"ip6_tables_names", "ip6tables", event.FamilyIPv6}} {
		b, err := os.ReadFile("/proc/thread-self/net/" + f.file)
		if err != nil {
			continue
		}
		for _, table := range strings.Fields(string(b)) {
			for _, h := range legacyHooks[table] {
				out = append(out, Fn{Family: f.fam, Hook: h.hook, Priority: h.prio,
					Name: fmt.Sprintf("%s-legacy %s table", f.tool, table)})
			}
		}
	}
	return out
}

// conntrack reports connection tracking's hook functions when it is loaded
// (its sysctls exist only then).
func conntrack() []Fn {
	if _, err := os.Stat("/proc/sys/net/netfilter/nf_conntrack_count"); err != nil {
		return nil
	}
	var out []Fn
	for _, fam := range []event.Family{event.FamilyIPv4, event.FamilyIPv6} {
		out = append(out,
			Fn{Family: fam, Hook: 0, Priority: -400, Name: "defragmentation (nf_defrag)"},
			Fn{Family: fam, Hook: 3, Priority: -400, Name: "defragmentation (nf_defrag)"},
			Fn{Family: fam, Hook: 0, Priority: -200, Name: "connection tracking (nf_conntrack)"},
			Fn{Family: fam, Hook: 3, Priority: -200, Name: "connection tracking (nf_conntrack)"},
			Fn{Family: fam, Hook: 1, Priority: math.MaxInt32, Name: "connection tracking confirm (nf_conntrack)"},
			Fn{Family: fam, Hook: 4, Priority: math.MaxInt32, Name: "connection tracking confirm (nf_conntrack)"},
		)
	}
	return out
}

// Points places observers for fns in families: one at the start of every
// hook, and one just after each priority where a function runs (none
// after INT_MAX, which is the last).
func Points(fns []Fn, families []event.Family) []event.Point {
	var pts []event.Point
	for _, fam := range families {
		for hook := event.Hook(0); hook < event.NumHooks; hook++ {
			prios := []int32{event.FirstPriority}
			for _, f := range fns {
				if f.Family == fam && f.Hook == hook && f.Priority < math.MaxInt32 && f.Priority+1 > event.FirstPriority {
					prios = append(prios, f.Priority+1)
				}
			}
			slices.Sort(prios)
			for _, p := range slices.Compact(prios) {
				pt := event.Point{Family: fam, Hook: hook, Priority: p, Before: math.MaxInt32}
				for _, f := range fns {
					if f.Family == fam && f.Hook == hook && f.Priority >= p && f.Priority < pt.Before {
						pt.Before = f.Priority
					}
				}
				pts = append(pts, pt)
			}
		}
	}
	return pts
}
