package diag

import (
	"fmt"
	"math"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/nfhooks"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Hooks is what the diagnosis knows of a namespace's netfilter hooks: the
// hook functions registered there and where observers watched.
type Hooks struct {
	Fns    []nfhooks.Fn
	Points []event.Point
}

// hookBlameRule: for a netfilter drop, the last observer the packet passed
// and the first it did not reach bound the hook function that took it.
func hookBlameRule(s *track.Story, ctx Context, a *Analysis) []Finding {
	d, ok := s.Drop()
	if !ok || d.Reason != "NETFILTER_DROP" {
		return nil
	}
	// The last observer the packet passed in the drop's namespace since it
	// last arrived there: an observer of an earlier pass (before a bridge
	// took it, or before it went through a veth and back) is not about
	// the hook that dropped it.
	var last *event.Event
	for i := range s.Events {
		e := &s.Events[i]
		if e.Netns != d.Netns || e.Kernel > d.Kernel {
			continue
		}
		switch e.Probe {
		case event.NFObserve:
			last = e
		case event.NetifReceiveSkb, event.NetifRx, event.NapiGroReceiveEntry:
			if last != nil && last.Ifname != e.Ifname {
				last = nil
			}
		}
	}
	h, known := ctx.Hooks[d.Netns]
	if last == nil || !known {
		return nil
	}
	// A bridged packet may pass ip/ip6 hooks too (br_netfilter), but the
	// observers cannot watch the bridge family's: an ip observer does not
	// bound the bridge hook that dropped it.
	if _, bridged := a.Path.Bridged(d.Netns); bridged && last.Facts.Hook.Family != event.FamilyBridge {
		return nil
	}
	at := last.Facts.Hook
	fam, hook, passed := at.Family, at.Hook, at.Priority
	next := int64(math.MaxInt32) + 1
	for _, p := range h.Points {
		if p.Family == fam && p.Hook == hook && p.Priority > passed && int64(p.Priority) < next {
			next = int64(p.Priority)
		}
	}
	var blamed, all []string
	var only *nfhooks.Fn
	for i, f := range h.Fns {
		if f.Family != fam || f.Hook != hook {
			continue
		}
		mark := ""
		if int64(f.Priority) >= int64(passed) && int64(f.Priority) < next {
			blamed = append(blamed, fmt.Sprintf("%s (priority %d)", f.Name, f.Priority))
			mark = "  <== took the packet"
			if f.Table != "" {
				only = &h.Fns[i]
			}
		}
		all = append(all, fmt.Sprintf("%d %s%s", f.Priority, f.Name, mark))
	}
	where := fmt.Sprintf("%s %s", fam, hook)
	for i := range a.Findings {
		f := &a.Findings[i]
		if f.Reason != "NETFILTER_DROP" {
			continue
		}
		f.Hook = where
		f.Evidence = append(f.Evidence, fmt.Sprintf("netfilter observers in netns %s: the packet passed %s after priority %d and was dropped before the next observer", ctx.ns(d.Netns), where, passed))
		if len(blamed) > 0 {
			f.Blamed = strings.Join(blamed, " or ")
		} else {
			f.Blamed = fmt.Sprintf("a hook function after priority %d", passed)
		}
		if len(blamed) == 1 && only != nil && f.Table == "" {
			f.Family, f.Table, f.Chain = only.TableFamily, only.Table, only.Chain
		}
	}
	if !ctx.ShowHooks {
		return nil
	}
	return []Finding{{Level: Info, Code: "nf.hooks", Event: -1, Netns: d.Netns,
		Message:  fmt.Sprintf("hook functions at netfilter hook %s in netns %s, by priority", where, ctx.ns(d.Netns)),
		Evidence: all}}
}
