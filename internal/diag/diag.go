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
	"github.com/skbtrail/skbtrail/internal/path"
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
	Code     string   // stable code, e.g. "nf.rule_drop" (README: finding catalog)
	Evidence []string // what it rests on: events, counters, live checks; one line each
	Event    int      // index of the event in the story it is about; -1 for the story as a whole
	Probe    string   // the event's probe and group, where it has one
	Group    string
	Message  string
	Advice   string // what to change; "" when there is nothing to do
	Reason   string // drop reason, for drops
	Location string // the dropping function, for drops
	Netns    uint32

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
	Path     path.Path // built from the story before any rule ran
	PathText string    // the path in one line, namespaces named
	Levels   []Level   // one per story event
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
	Links     path.Links       // answers which devices are bridge ports; may be nil
	Live      Live             // live checks; may be nil
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
	a := &Analysis{Story: s, Levels: make([]Level, len(s.Events)), Path: path.Build(s, ctx.Links)}
	a.PathText = a.Path.Describe(ctx.ns)
	for i, e := range s.Events {
		// An event without a namespace (a route lookup that found no
		// device) happened where the packet was.
		e.Netns = storyNetns(s, i)
		for _, r := range eventRules {
			if !r.matches(e) {
				continue
			}
			f := r.Find(e, ctx)
			f.Event, f.Probe, f.Group, f.Netns = i, e.Name, e.Group, e.Netns
			if f.Code == "" {
				f.Code = r.Code
			}
			f.Evidence = append([]string{Describe(e, ctx)}, f.Evidence...)
			if f.Level > a.Levels[i] {
				a.Levels[i] = f.Level
			}
			a.Findings = append(a.Findings, f)
		}
	}
	for _, r := range append(storyRules[:len(storyRules):len(storyRules)], liveRules...) {
		for _, f := range r(s, ctx, a) {
			if f.Event >= 0 && f.Event < len(a.Levels) && f.Level > a.Levels[f.Event] {
				a.Levels[f.Event] = f.Level
			}
			a.Findings = append(a.Findings, f)
		}
	}
	counterFindings(s, ctx, a)
	// A finding that rests on nothing is not shown.
	kept := a.Findings[:0]
	for _, f := range a.Findings {
		if len(f.Evidence) > 0 && f.Code != "" {
			kept = append(kept, f)
		}
	}
	a.Findings = kept
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

// storyNetns is the namespace of event i, or where the packet was around
// it when the event has none: the nearest earlier event's, else the
// nearest later one's.
func storyNetns(s *track.Story, i int) uint32 {
	if n := s.Events[i].Netns; n != 0 {
		return n
	}
	for j := i - 1; j >= 0; j-- {
		if n := s.Events[j].Netns; n != 0 {
			return n
		}
	}
	for j := i + 1; j < len(s.Events); j++ {
		if n := s.Events[j].Netns; n != 0 {
			return n
		}
	}
	return 0
}

// EventRule fires on one event of a probe: a tracepoint (Probe), or a
// function probe's events for the function Func.
type EventRule struct {
	Code  string // the findings' code, unless Find sets one
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
		Level:    Info,
		Code:     "counters",
		Event:    -1,
		Message:  "kernel counters that moved while tracing",
		Evidence: parts,
	})
}

// Describe is an event as evidence: "kfree_skb in netns N on veth-b:
// reason NETFILTER_DROP at nft_do_chain+0x3e8, icmp 198.18.0.1 > ...".
func Describe(e event.Event, ctx Context) string {
	var b strings.Builder
	b.WriteString("event " + e.Name)
	if e.Netns != 0 {
		b.WriteString(" in netns " + ctx.ns(e.Netns))
	}
	if e.Ifname != "" {
		b.WriteString(" on " + e.Ifname)
	}
	var facts []string
	if e.Reason != "" {
		facts = append(facts, "reason "+e.Reason)
	}
	if e.Location != "" {
		facts = append(facts, "at "+e.Location)
	}
	for _, f := range e.Fields() {
		facts = append(facts, fmt.Sprintf("%s %v", f.Key, f.Value))
	}
	if p := e.Packet.String(); p != "" {
		facts = append(facts, p)
	}
	if len(facts) > 0 {
		b.WriteString(": " + strings.Join(facts, ", "))
	}
	return b.String()
}

// Live answers questions about the live system at analysis time: read
// only, bounded in time and cached per run (internal/live). Each method
// returns ok false when it cannot tell.
type Live interface {
	// Route is the route lookup for a flow in a namespace, as the kernel
	// answers it now, with the policy rule and table that decided it.
	Route(netns uint32, src, dst netip.Addr, iif string) (RouteCheck, bool)
	// Listeners are the sockets bound to a port (TCP: listening), on any
	// address, in every namespace it can see.
	Listeners(proto uint8, family uint8, port uint16) ([]Listener, bool)
	// TCFilters are the tc filters on a device's ingress or egress.
	TCFilters(netns uint32, dev string, ingress bool) ([]TCFilter, bool)
	// Sysctl reads /proc/sys/<key> ("net/ipv4/icmp_echo_ignore_all").
	Sysctl(netns uint32, key string) (int, bool)
	// MTU is a device's MTU.
	MTU(netns uint32, dev string) (int, bool)
	// Neigh is the state of the neighbour entry for addr on dev
	// ("REACHABLE", "FAILED", ...; "" when there is none).
	Neigh(netns uint32, dev string, addr netip.Addr) (string, bool)
}

// RouteCheck is what a live route lookup found.
type RouteCheck struct {
	Type   string     // "unicast", "local", "broadcast", "blackhole", "unreachable", "prohibit", "throw", "none"
	Table  int        // the table whose route decided, 0 when a policy rule decided alone
	Prefix string     // that route's destination ("198.18.0.0/24", "default")
	Dev    string     // its output device, if any
	Via    netip.Addr // its gateway, if any
	Rule   string     // the policy rule that decided, as `ip rule` prints it
	Errno  string     // the kernel's answer to the lookup, "" when it found a route
}

// Listener is a socket bound to a port.
type Listener struct {
	Netns uint32
	Proto uint8
	Addr  netip.AddrPort
}

// TCFilter is a tc filter on a device; BPF programs carry name, id, tag.
type TCFilter struct {
	Kind         string // "bpf", "u32", "matchall", ...
	Pref         int
	Name         string // the BPF program's name
	ID           int
	Tag          string
	DirectAction bool
}
