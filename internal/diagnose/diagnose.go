// Package diagnose is the diagnosis session (--diag): it adds to a tracing
// session what the analysis needs besides the packet's story (netfilter
// observers, the nftables rule trace, counters, host facts), holds each
// finished story until what arrives on other channels can join it, and
// analyses it with the rules of internal/diag.
package diagnose

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skbtrail/skbtrail/internal/counters"
	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/host"
	"github.com/skbtrail/skbtrail/internal/names"
	"github.com/skbtrail/skbtrail/internal/netns"
	"github.com/skbtrail/skbtrail/internal/nfhooks"
	"github.com/skbtrail/skbtrail/internal/nftrace"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/probe/netfilter"
	"github.com/skbtrail/skbtrail/internal/track"
)

// settle is how long a finished story waits before it is analysed, so that
// what arrives on other channels (the rule trace) can join it; a netfilter
// drop waits up to ruleWait more for the rule that took it.
const (
	settle   = 150 * time.Millisecond
	ruleWait = 2 * time.Second
)

// Options configure the diagnosis of each packet.
type Options struct {
	Enabled   bool
	Keep      bool // go on after the first packet with an ERROR
	Quiet     bool // show only packets with a WARN or an ERROR
	NoNFTrace bool // do not add the nftables rule-trace table
	Hooks     bool // list the hook functions of a netfilter drop's hook
	// Names names namespaces in findings and advice (pod, netns name,
	// process) and says how to run a command there; nil: inode and
	// /run/netns name only.
	Names interface{ Who(inode uint32) names.Who }
}

// Diagnoser gathers what the analysis needs besides the story, and
// analyses stories once they settled.
type Diagnoser struct {
	ctx    diag.Context
	queue  []queued
	names  map[uint32]string
	spaces []space                      // the traced namespaces
	before map[uint32]counters.Snapshot // counters at start, per namespace
	paths  map[uint32]string            // namespace file of each traced namespace
	now    map[uint32]read              // latest counters read, per namespace

	who interface{ Who(inode uint32) names.Who } // nil: /run/netns names only

	mu      sync.Mutex
	hits    []diag.RuleHit // rule trace events, newest last
	tracers []*nftrace.Tracer
}

// keepHits bounds the rule trace events kept for joining to packets.
const keepHits = 4096

type read struct {
	at   time.Time
	snap counters.Snapshot
}

type queued struct {
	s     *track.Story
	ready time.Time
}

// New starts the diagnosis for tracing session sess: the rule trace (in
// every namespace f selects, unless opts.NoNFTrace) and the netfilter
// observers. What cannot start is said once on log; it fails only when
// nothing of the diagnosis can run.
func New(ctx context.Context, f filter.Filter, opts Options, log io.Writer, sess *probe.Session) (*Diagnoser, error) {
	d := &Diagnoser{names: netns.Names(), spaces: tracedNamespaces(f), who: opts.Names}
	d.ctx.Host = host.Host{}
	d.ctx.Netns = d.nsName
	if d.who != nil {
		d.ctx.Enter = func(ino uint32) string { return d.who.Who(ino).Enter() }
	}
	d.ctx.ShowHooks = opts.Hooks
	d.before, d.paths, d.now = map[uint32]counters.Snapshot{}, map[uint32]string{}, map[uint32]read{}
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		if snap, err := counters.Read(path); err == nil {
			d.before[ino], d.paths[ino] = snap, path
		}
	}
	if !opts.NoNFTrace {
		d.ruleTrace(ctx, f, log)
	}
	if err := d.observe(f, log, sess); err != nil {
		fmt.Fprintf(log, "skbtrail: netfilter observers unavailable (%v): netfilter drops are blamed from the drop location and the rule trace only\n", err)
		d.ctx.Hooks = nil
	}
	return d, nil
}

// space is a traced network namespace: a path to its file ("" for the
// current one) and its inode.
type space struct {
	path string
	ino  uint32
}

// tracedNamespaces returns the namespaces the filter selects: the one of
// --netns, else the current one and every one under /run/netns.
func tracedNamespaces(f filter.Filter) []space {
	if f.Netns != 0 {
		return []space{{netns.Path(f.Netns), f.Netns}}
	}
	out := []space{{"", netns.Current()}}
	for _, name := range netns.List() {
		path := filepath.Join(netns.Dir, name)
		if ino, err := netns.Inode(path); err == nil {
			out = append(out, space{path, ino})
		}
	}
	return out
}

// families returns the netfilter families the filter can match.
func families(f filter.Filter) []event.Family {
	for _, p := range []netip.Prefix{f.Saddr, f.Daddr, f.Addr} {
		if p.IsValid() {
			if p.Addr().Is4() {
				return []event.Family{event.FamilyIPv4}
			}
			return []event.Family{event.FamilyIPv6}
		}
	}
	switch f.Proto {
	case filter.ProtoICMP:
		return []event.Family{event.FamilyIPv4}
	case filter.ProtoICMPv6:
		return []event.Family{event.FamilyIPv6}
	}
	return []event.Family{event.FamilyIPv4, event.FamilyIPv6}
}

// observe places netfilter observers around the hook functions of every
// traced namespace.
func (d *Diagnoser) observe(f filter.Filter, log io.Writer, sess *probe.Session) error {
	d.ctx.Hooks = map[uint32]diag.Hooks{}
	fams := families(f)
	var plans []netfilter.Plan
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		fns, err := nfhooks.List(path)
		if err != nil {
			fmt.Fprintf(log, "skbtrail: warning: netfilter hooks of netns %s: %v\n", d.nsName(ino), err)
		}
		pts := nfhooks.Points(fns, fams)
		plans = append(plans, netfilter.Plan{Netns: path, Points: pts})
		d.ctx.Hooks[ino] = diag.Hooks{Fns: fns, Points: pts}
	}
	_, err := netfilter.Observe(sess, plans)
	return err
}

// nsName names a namespace for messages: "4026532281 (pod default/web)",
// "4026532281 (netns blue)", "4026532281 (host)", or, without a resolver,
// "4026532281 (blue)".
func (d *Diagnoser) nsName(inode uint32) string {
	if d.who != nil {
		if w := d.who.Who(inode); w.Known() {
			return fmt.Sprintf("%d (%s)", inode, w.Short())
		}
		return fmt.Sprint(inode)
	}
	name, ok := d.names[inode]
	if !ok {
		d.names = netns.Names() // it may be new
		name, ok = d.names[inode]
	}
	if ok {
		return fmt.Sprintf("%d (%s)", inode, name)
	}
	return fmt.Sprint(inode)
}

// Add queues a finished story for analysis. A lone skb-less event that
// belongs to a story still settling joins it instead (track.JoinLate).
func (d *Diagnoser) Add(s *track.Story) {
	if s.Skb == 0 && len(s.Events) == 1 {
		settling := make([]*track.Story, len(d.queue))
		for i, q := range d.queue {
			settling[i] = q.s
		}
		if track.JoinLate(settling, s.Events[0]) {
			return
		}
	}
	d.queue = append(d.queue, queued{s, time.Now().Add(settle)})
}

// Ready analyses the stories that settled (all of them with force).
func (d *Diagnoser) Ready(force bool) []*diag.Analysis {
	now := time.Now()
	var out []*diag.Analysis
	n := 0
	for _, q := range d.queue {
		if !force && now.Before(q.ready) {
			break
		}
		ctx := d.ctx
		d.mu.Lock()
		ctx.Rules = slices.Clone(d.hits)
		d.mu.Unlock()
		// A netfilter drop waits longer for its rule trace event, which
		// comes over netlink and may lag on a busy host.
		if !force && len(d.tracers) > 0 && now.Before(q.ready.Add(ruleWait)) {
			if drop, ok := q.s.Drop(); ok && drop.Reason == "NETFILTER_DROP" && diag.DropRule(q.s, ctx.Rules) == nil {
				break
			}
		}
		ctx.Counters = d.counters(q.s)
		out = append(out, diag.Analyze(q.s, ctx))
		n++
	}
	d.queue = d.queue[n:]
	return out
}

// counterReadEvery bounds how often one namespace's counters are read.
const counterReadEvery = 200 * time.Millisecond

// counters returns the counters that matter and moved since the start in
// the namespaces the story passed through.
func (d *Diagnoser) counters(s *track.Story) []diag.Counter {
	var out []diag.Counter
	seen := map[uint32]bool{}
	for _, e := range s.Events {
		ino := e.Netns
		before, ok := d.before[ino]
		if seen[ino] || !ok {
			continue
		}
		seen[ino] = true
		r := d.now[ino]
		if time.Since(r.at) > counterReadEvery {
			snap, err := counters.Read(d.paths[ino])
			if err != nil {
				continue
			}
			r = read{time.Now(), snap}
			d.now[ino] = r
		}
		for _, c := range counters.Notable(counters.Diff(before, r.snap)) {
			out = append(out, diag.Counter{Netns: ino, Name: c.Name, Delta: c.Delta, Meaning: counters.Explain(c.Name)})
		}
	}
	return out
}

// ruleTrace starts the nftables rule trace in every traced namespace and
// collects its events. A namespace where it cannot start is reported once.
func (d *Diagnoser) ruleTrace(ctx context.Context, f filter.Filter, log io.Writer) {
	var failed []string
	var firstErr error
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		t, err := nftrace.Start(ctx, nftrace.Options{Netns: path, Filter: f})
		if err != nil {
			failed = append(failed, d.nsName(ino))
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.tracers = append(d.tracers, t)
		go d.collect(t, ino)
	}
	if firstErr != nil {
		fmt.Fprintf(log, "skbtrail: warning: no nftables rule trace in netns %s: %v\n", strings.Join(failed, ", "), firstErr)
	}
}

// collect turns a tracer's events into rule hits until it closes.
func (d *Diagnoser) collect(t *nftrace.Tracer, ino uint32) {
	for e := range t.Events() {
		h := diag.RuleHit{
			Netns: ino, Family: e.Family, Table: e.Table, Chain: e.Chain, Handle: e.Handle,
			Rule: e.Rule, Verdict: e.Verdict, Policy: e.Type == "policy",
			Packet: e.Packet.Event(),
		}
		d.mu.Lock()
		d.hits = append(d.hits, h)
		if len(d.hits) > keepHits {
			d.hits = slices.Delete(d.hits, 0, len(d.hits)-keepHits)
		}
		d.mu.Unlock()
	}
}

// Close stops the rule trace; the kernel removes its tables.
func (d *Diagnoser) Close() error {
	for _, t := range d.tracers {
		t.Close()
	}
	return nil
}
