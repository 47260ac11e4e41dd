package trace

import (
	"context"
	"fmt"
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

// diagnoser gathers what the analysis needs besides the story, and
// analyses stories once they settled.
type diagnoser struct {
	ctx    diag.Context
	queue  []queued
	names  map[uint32]string
	spaces []space                      // the traced namespaces
	before map[uint32]counters.Snapshot // counters at start, per namespace
	paths  map[uint32]string            // namespace file of each traced namespace
	now    map[uint32]read              // latest counters read, per namespace

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

func newDiagnoser(ctx context.Context, cfg Config, sess *probe.Session) (*diagnoser, error) {
	d := &diagnoser{names: netns.Names(), spaces: tracedNamespaces(cfg.Filter)}
	d.ctx.Host = host.Host{}
	d.ctx.Netns = d.nsName
	d.ctx.ShowHooks = cfg.Diag.Hooks
	d.before, d.paths, d.now = map[uint32]counters.Snapshot{}, map[uint32]string{}, map[uint32]read{}
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		if snap, err := counters.Read(path); err == nil {
			d.before[ino], d.paths[ino] = snap, path
		}
	}
	if !cfg.Diag.NoNFTrace {
		d.ruleTrace(ctx, cfg)
	}
	if err := d.observe(cfg, sess); err != nil {
		fmt.Fprintf(cfg.Log, "skbtrail: netfilter observers unavailable (%v): netfilter drops are blamed from the drop location and the rule trace only\n", err)
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
func (d *diagnoser) observe(cfg Config, sess *probe.Session) error {
	d.ctx.Hooks = map[uint32]diag.Hooks{}
	fams := families(cfg.Filter)
	var plans []netfilter.Plan
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		fns, err := nfhooks.List(path)
		if err != nil {
			fmt.Fprintf(cfg.Log, "skbtrail: warning: netfilter hooks of netns %s: %v\n", d.nsName(ino), err)
		}
		pts := nfhooks.Points(fns, fams)
		plans = append(plans, netfilter.Plan{Netns: path, Points: pts})
		d.ctx.Hooks[ino] = diag.Hooks{Fns: fns, Points: pts}
	}
	_, err := netfilter.Observe(sess, plans)
	return err
}

// nsName names a namespace for messages: "4026532281 (blue)".
func (d *diagnoser) nsName(inode uint32) string {
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

func (d *diagnoser) add(s *track.Story) {
	if s.Skb == 0 && len(s.Events) == 1 && late(d.queue, s.Events[0]) {
		return
	}
	d.queue = append(d.queue, queued{s, time.Now().Add(settle)})
}

// late joins a lone skb-less event to the queued story it came right after
// on its CPU, if its addresses fit that packet, and says whether it did.
// Before 6.10 the kernel traces udp_fail_queue_rcv_skb, which names only
// the socket, after it freed the datagram: the tracker has ended the
// datagram's story by then, but the story still waits here to settle.
func late(queue []queued, e event.Event) bool {
	for i := len(queue) - 1; i >= 0; i-- {
		s := queue[i].s
		last := s.Events[len(s.Events)-1]
		if s.Skb == 0 || last.CPU != e.CPU || e.Kernel < last.Kernel || e.Kernel-last.Kernel > track.LateWindow {
			continue
		}
		if track.Fits(last.Packet, e.Packet) {
			s.Events = append(s.Events, e)
			return true
		}
	}
	return false
}

// ready analyses the stories that settled (all of them with force).
func (d *diagnoser) ready(force bool) []*diag.Analysis {
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
func (d *diagnoser) counters(s *track.Story) []diag.Counter {
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
func (d *diagnoser) ruleTrace(ctx context.Context, cfg Config) {
	var failed []string
	var firstErr error
	for _, sp := range d.spaces {
		path, ino := sp.path, sp.ino
		t, err := nftrace.Start(ctx, nftrace.Options{Netns: path, Filter: cfg.Filter})
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
		fmt.Fprintf(cfg.Log, "skbtrail: warning: no nftables rule trace in netns %s: %v\n", strings.Join(failed, ", "), firstErr)
	}
}

// collect turns a tracer's events into rule hits until it closes.
func (d *diagnoser) collect(t *nftrace.Tracer, ino uint32) {
	for e := range t.Events() {
		h := diag.RuleHit{
			Netns: ino, Family: e.Family, Table: e.Table, Chain: e.Chain, Handle: e.Handle,
			Rule: e.Rule, Verdict: e.Verdict, Policy: e.Type == "policy",
			Packet: event.Packet{
				Source: event.FromHeaders, Src: e.Packet.Src, Dst: e.Packet.Dst, Proto: e.Packet.Proto,
				Sport: e.Packet.Sport, Dport: e.Packet.Dport, ICMPType: e.Packet.ICMPType,
				ICMPCode: e.Packet.ICMPCode, ICMPID: e.Packet.ICMPID, ICMPSeq: e.Packet.ICMPSeq,
			},
		}
		if e.Packet.Src.Is4() {
			h.Packet.Family = 4
		} else if e.Packet.Src.Is6() {
			h.Packet.Family = 6
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
func (d *diagnoser) Close() error {
	for _, t := range d.tracers {
		t.Close()
	}
	return nil
}
