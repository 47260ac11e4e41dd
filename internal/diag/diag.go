// Package diag explains a packet's story: rules, kept as data, mark each
// event INFO, WARN or ERROR, and the analysis result says where the packet
// was lost, why, and what to change.
package diag

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Level grades an event or a finding.
type Level int

const (
	Info Level = iota
	Warn
	Error
)

func (l Level) String() string {
	switch l {
	case Warn:
		return "WARN"
	case Error:
		return "ERROR"
	}
	return "INFO"
}

// MarshalText writes the level as JSON wants it: "info", "warn", "error".
func (l Level) MarshalText() ([]byte, error) { return []byte(strings.ToLower(l.String())), nil }

// Finding is one thing the analysis found, with what to do about it.
type Finding struct {
	Level    Level
	Event    int    // index of the event in the story it is about; -1 for the story as a whole
	Probe    string // the event's probe and group, where it has one
	Group    string
	Message  string
	Advice   string // what to change; "" when there is nothing to do
	Reason   string // drop reason, for drops
	Location string // the dropping function, for drops
	Netns    uint32
	Details  []string // more lines of facts, e.g. the counters that moved

	// Netfilter blame, where known.
	Hook   string // e.g. "input"
	Family string // nftables family: "inet", "ip", "ip6", ...
	Table  string
	Chain  string
	Rule   string // the rule's text (or "handle N")
	Blamed string // the hook function that took the packet
}

// Analysis is a story with a level for each event and the findings.
type Analysis struct {
	Story    *track.Story
	Levels   []Level // one per story event
	Findings []Finding
}

// Worst is the highest level of any finding (Info when none).
func (a *Analysis) Worst() Level {
	w := Info
	for _, f := range a.Findings {
		if f.Level > w {
			w = f.Level
		}
	}
	return w
}

// RuleHit is an nftables rule trace event (from the kernel's nftrace) about
// the packet: which table, chain and rule it passed and with what verdict.
type RuleHit struct {
	Netns   uint32
	Family  string
	Table   string
	Chain   string
	Handle  uint64
	Rule    string // rule text, or ""
	Verdict string // "accept", "drop", "continue", "jump x", ...
	Policy  bool   // the verdict is the chain's policy, not a rule's
	Packet  event.Packet
}

// Context is what is known besides the story: rule traces, counters that
// moved, and facts about the host.
type Context struct {
	Rules     []RuleHit
	Counters  []Counter
	Hooks     map[uint32]Hooks // netfilter hooks per namespace inode, where observed
	ShowHooks bool             // list every hook function of a netfilter drop's hook
	Host      Host             // may be nil
	Netns     NetnsFn          // names a namespace inode for messages; may be nil
	// Enter says how to run a command CMD in a namespace ("`nsenter -t
	// 1234 -n CMD`"; "" for the current one); may be nil. A finding's
	// advice then ends with it.
	Enter NetnsFn
}

// Counter is a kernel counter that moved during the trace, with what it
// means ("Udp NoPorts", +3, "UDP datagrams to a port with no socket").
type Counter struct {
	Netns   uint32
	Name    string
	Delta   int64
	Meaning string
}

// Host answers questions about the host's configuration in a namespace.
// A method returns ok false when it cannot tell.
type Host interface {
	Forwarding(netns uint32, family uint8, ifname string) (on, ok bool)
	RPFilter(netns uint32, ifname string) (mode int, ok bool)
	IsLocal(netns uint32, addr netip.Addr) (local, ok bool)
}

// NetnsFn names a network namespace inode, e.g. "4026532281 (blue)".
type NetnsFn func(inode uint32) string

func (c Context) ns(inode uint32) string {
	if c.Netns != nil {
		return c.Netns(inode)
	}
	return fmt.Sprint(inode)
}

// Analyze applies the rules to a story.
func Analyze(s *track.Story, ctx Context) *Analysis {
	a := &Analysis{Story: s, Levels: make([]Level, len(s.Events))}
	for i, e := range s.Events {
		for _, r := range eventRules {
			if !r.matches(e) {
				continue
			}
			f := r.Find(e, ctx)
			f.Event, f.Probe, f.Group, f.Netns = i, e.Name, e.Group, e.Netns
			if f.Level > a.Levels[i] {
				a.Levels[i] = f.Level
			}
			a.Findings = append(a.Findings, f)
		}
	}
	for _, r := range storyRules {
		for _, f := range r(s, ctx, a) {
			if f.Event >= 0 && f.Event < len(a.Levels) && f.Level > a.Levels[f.Event] {
				a.Levels[f.Event] = f.Level
			}
			a.Findings = append(a.Findings, f)
		}
	}
	counterFindings(s, ctx, a)
	if ctx.Enter != nil {
		for i, f := range a.Findings {
			if f.Advice == "" || f.Netns == 0 {
				continue
			}
			if how := ctx.Enter(f.Netns); how != "" {
				a.Findings[i].Advice += "; run them in netns " + ctx.ns(f.Netns) + " with " + how
			}
		}
	}
	sort.SliceStable(a.Findings, func(i, j int) bool { return a.Findings[i].Level > a.Findings[j].Level })
	return a
}

// EventRule fires on one event of a probe: a tracepoint (Probe), or a
// function probe's events for the function Func.
type EventRule struct {
	Probe event.Probe
	Func  string
	When  func(e event.Event) bool // nil: always
	Find  func(e event.Event, ctx Context) Finding
}

func (r EventRule) matches(e event.Event) bool {
	if r.Func != "" {
		if !e.Func() || e.Name != r.Func {
			return false
		}
	} else if e.Probe != r.Probe {
		return false
	}
	return r.When == nil || r.When(e)
}

// StoryRule looks at a whole story (and what the event rules found).
type StoryRule func(s *track.Story, ctx Context, a *Analysis) []Finding

func counterFindings(s *track.Story, ctx Context, a *Analysis) {
	if len(ctx.Counters) == 0 {
		return
	}
	inStory := map[uint32]bool{}
	for _, e := range s.Events {
		inStory[e.Netns] = true
	}
	var parts []string
	for _, c := range ctx.Counters {
		if !inStory[c.Netns] {
			continue
		}
		p := fmt.Sprintf("%s %+d in netns %s", c.Name, c.Delta, ctx.ns(c.Netns))
		if c.Meaning != "" {
			p += ": " + c.Meaning
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return
	}
	a.Findings = append(a.Findings, Finding{
		Level:   Info,
		Event:   -1,
		Message: "kernel counters that moved while tracing",
		Details: parts,
	})
}
