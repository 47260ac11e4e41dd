// Package track assembles events into per-packet stories: every event of
// one skb, in order, from where it was first seen to where it was freed.
package track

import (
	"net/netip"
	"sort"
	"time"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/limits"
)

// The tracker's bounds: memory stays flat however many packets, clones and
// route lookups a flood brings. Each hit is counted (internal/limits).
var (
	StoriesLimit = limits.New("stories in flight", 65536, "", "events of further packets not followed")
	EventsLimit  = limits.New("events per story", 512, "", "events left out of the middle of their story (the first and the last are kept)")
	PendingLimit = limits.New("route lookups waiting per CPU", 256, "", "route lookups forgotten")
	HeldLimit    = limits.New("freed clones waiting for their packet", 4096, "", "clones shown as stories of their own")
)

// Story is the life of one packet (one skb) as the probes saw it.
type Story struct {
	Skb     uint64
	Events  []event.Event // in kernel time order once ended
	Ended   bool          // the skb was freed: the story is complete
	Dropped bool          // it was freed by kfree_skb (a drop)
	Parent  uint64        // the skb this one is a clone or copy of (function probes), or 0
	Omitted int           // events left out because the story reached EventsLimit
	head    uint64        // the skb's data buffer, shared with its clones
	last    uint64        // kernel time of the newest event
	freed   bool          // a free was seen
	pending int           // function entries whose return event is still to come
}

// Packet reports whether the story is about a real skb (and so counts as a
// packet), rather than a lone event without one, such as a route lookup
// nobody claimed or a reset seen only on a socket.
func (s *Story) Packet() bool { return s.Skb != 0 }

// Drop returns the drop event, if the packet was dropped.
func (s *Story) Drop() (event.Event, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if s.Events[i].Probe == event.KfreeSkb && (s.Events[i].Skb == s.Skb || s.Skb == 0) {
			return s.Events[i], true
		}
	}
	return event.Event{}, false
}

// Tracker groups events into stories by skb address. It is not safe for
// concurrent use.
type Tracker struct {
	// Idle is how long a story without new events stays open before
	// Expire hands it out unfinished; 0 means 2s.
	Idle time.Duration
	// MaxOpen, MaxEvents, MaxPending and MaxHeld override the limits
	// (StoriesLimit, EventsLimit, PendingLimit, HeldLimit) when not 0.
	MaxOpen, MaxEvents, MaxPending, MaxHeld int

	claimed []event.Event // route lookups that joined a story (Claimed)

	// held are short stories of clones freed where they were first seen
	// (the neighbour code probes with a clone of a queued packet and
	// frees it): they wait, by data buffer, for the story of the packet
	// they were cloned from, and join it.
	held map[uint64]*Story

	open    map[uint64]*Story
	pending map[uint32][]event.Event // route lookups waiting for their packet, per CPU
}

// pendingWindow is how long an skb-less event (a route lookup) waits for
// the packet it belongs to.
const pendingWindow = uint64(50 * time.Millisecond)

// LateWindow is how long after a packet's last event an skb-less event on
// the same CPU may still be about it: before 6.10 the kernel traces
// udp_fail_queue_rcv_skb (with the socket only) after it freed the skb.
const LateWindow = pendingWindow

func pick(v int, l *limits.Limit) int {
	if v > 0 {
		return v
	}
	return l.Max
}

func (t *Tracker) idle() uint64 {
	if t.Idle == 0 {
		return uint64(2 * time.Second)
	}
	return uint64(t.Idle)
}

// Add adds e and returns the stories that are complete because of it.
func (t *Tracker) Add(e event.Event) []*Story {
	if t.open == nil {
		t.open = map[uint64]*Story{}
		t.pending = map[uint32][]event.Event{}
	}
	if e.Skb == 0 {
		// An event without an skb (a route lookup, a socket event)
		// on this CPU belongs to the packet being handled there now:
		// of those that fit, the one seen last (earlier packets of the
		// same flow may still be open, queued on a socket).
		var now *Story
		for _, s := range t.open {
			last := s.Events[len(s.Events)-1]
			if last.CPU == e.CPU && s.last+pendingWindow >= e.Kernel && Fits(last.Packet, e.Packet) &&
				(now == nil || s.last > now.last) {
				now = s
			}
		}
		if now != nil {
			t.append(now, e)
			t.claimed = append(t.claimed, e)
			return nil
		}
		if e.Probe == event.FibTableLookup || e.Probe == event.Fib6TableLookup {
			// Output routes are looked up before the skb exists:
			// wait for the packet. One that no traced packet
			// claims is not shown: the kernel matched it loosely
			// (its flow lacks fields).
			if len(t.pending[e.CPU]) >= pick(t.MaxPending, PendingLimit) {
				PendingLimit.Hit()
				return nil
			}
			t.pending[e.CPU] = append(t.pending[e.CPU], e)
			return nil
		}
		return []*Story{finish(&Story{Events: []event.Event{e}, last: e.Kernel})}
	}
	s, ok := t.open[e.Skb]
	if !ok {
		if e.Return() {
			return nil // its story ended already (or expired)
		}
		if len(t.open) >= pick(t.MaxOpen, StoriesLimit) {
			StoriesLimit.Hit()
			return nil
		}
		s = &Story{Skb: e.Skb, Parent: e.Parent, head: e.Head}
		t.open[e.Skb] = s
		t.claim(s, e)
		if c, ok := t.held[e.Head]; ok && e.Head != 0 && sameHeaders(c, e.Packet) {
			delete(t.held, e.Head)
			for _, ce := range c.Events {
				t.append(s, ce)
			}
		}
	}
	t.append(s, e)
	// A function that frees the skb (ip_rcv delivering it) returns after
	// the free: with --ret the story waits for the returns it expects.
	switch {
	case e.RetFollows:
		s.pending++
	case e.Return() && s.pending > 0:
		s.pending--
	}
	if e.Ends() {
		s.Dropped = e.Probe == event.KfreeSkb
		s.freed = true
	}
	if s.freed && s.pending == 0 {
		delete(t.open, e.Skb)
		if s.brief() && s.head != 0 {
			if t.held == nil {
				t.held = map[uint64]*Story{}
			}
			var out []*Story
			if old, ok := t.held[s.head]; ok {
				out = append(out, finish(old))
			} else if len(t.held) >= pick(t.MaxHeld, HeldLimit) {
				HeldLimit.Hit()
				return []*Story{finish(s)}
			}
			t.held[s.head] = s
			return out
		}
		return []*Story{finish(s)}
	}
	return nil
}

// sameHeaders reports whether a held clone's packet is e's: a clone shares
// the data, so the headers are the same (a buffer reused by an unrelated
// packet has other headers).
func sameHeaders(c *Story, p event.Packet) bool {
	for _, ce := range c.Events {
		q := ce.Packet
		if q.Source != event.FromHeaders || p.Source != event.FromHeaders {
			continue
		}
		return q.Src == p.Src && q.Dst == p.Dst && q.Proto == p.Proto && q.Sport == p.Sport &&
			q.Dport == p.Dport && q.ICMPID == p.ICMPID && q.ICMPSeq == p.ICMPSeq && q.Seq == p.Seq
	}
	return false
}

// brief reports whether the story's own skb was seen only where it was
// freed, the mark of a clone made and freed on the side.
func (s *Story) brief() bool {
	for _, e := range s.Events {
		if e.Skb == s.Skb && e.Probe != event.KfreeSkb && e.Probe != event.ConsumeSkb {
			return false
		}
	}
	return true
}

// cloneWindow is how long a brief story waits for the packet it was
// cloned from.
const cloneWindow = uint64(500 * time.Millisecond)

func (t *Tracker) append(s *Story, e event.Event) {
	if max := pick(t.MaxEvents, EventsLimit); len(s.Events) >= max {
		// Keep the newest event last (it may be the free that ends the
		// story) in place of the one before it.
		EventsLimit.Hit()
		s.Omitted++
		s.Events[max-1] = e
	} else {
		s.Events = append(s.Events, e)
	}
	if e.Kernel > s.last {
		s.last = e.Kernel
	}
}

// claim moves recent skb-less events of e's CPU and flow into new story s.
func (t *Tracker) claim(s *Story, e event.Event) {
	list := t.pending[e.CPU]
	kept := list[:0]
	for _, p := range list {
		if p.Kernel+pendingWindow >= e.Kernel && p.Kernel <= e.Kernel && Fits(e.Packet, p.Packet) {
			t.append(s, p)
			t.claimed = append(t.claimed, p)
		} else {
			kept = append(kept, p)
		}
	}
	t.pending[e.CPU] = kept
}

// Fits reports whether an skb-less event's addresses fit packet p. A route
// lookup's flow must have p's destination, and its source unless the lookup
// had none yet; a socket event must have p's addresses and ports, except
// those the socket leaves open: an unconnected socket (a UDP server) has no
// remote address and port, and one bound to any address no local address.
func Fits(p, x event.Packet) bool {
	if p.Family == 0 || p.Family != x.Family {
		return false
	}
	if x.Source == event.FromFlow {
		return p.Dst == x.Dst && (!x.Src.IsValid() || x.Src.IsUnspecified() || x.Src == p.Src)
	}
	open := func(a netip.Addr) bool { return !a.IsValid() || a.IsUnspecified() }
	return (x.Dst == p.Dst || open(x.Dst)) && x.Dport == p.Dport &&
		(x.Src == p.Src && x.Sport == p.Sport || open(x.Src) && x.Sport == 0)
}

// Expire returns stories idle since before now-Idle (now in kernel
// monotonic ns), unfinished, and forgets route lookups nobody claimed.
func (t *Tracker) Expire(now uint64) []*Story {
	var out []*Story
	for skb, s := range t.open {
		if s.last+t.idle() < now {
			delete(t.open, skb)
			out = append(out, finish(s))
		}
	}
	for cpu, list := range t.pending {
		kept := list[:0]
		for _, p := range list {
			if p.Kernel+pendingWindow >= now {
				kept = append(kept, p)
			}
		}
		t.pending[cpu] = kept
	}
	for head, s := range t.held {
		if s.last+cloneWindow < now {
			delete(t.held, head)
			out = append(out, finish(s))
		}
	}
	sortStories(out)
	return out
}

// Flush returns every open story, unfinished, and empties the tracker.
func (t *Tracker) Flush() []*Story {
	var out []*Story
	for _, s := range t.open {
		out = append(out, finish(s))
	}
	for _, s := range t.held {
		out = append(out, finish(s))
	}
	t.open, t.pending, t.held = nil, nil, nil
	sortStories(out)
	return out
}

// Open returns how many stories are in progress.
func (t *Tracker) Open() int { return len(t.open) }

func finish(s *Story) *Story {
	s.Ended = s.freed || len(s.Events) > 0 && (s.Events[len(s.Events)-1].Probe == event.KfreeSkb ||
		s.Events[len(s.Events)-1].Probe == event.ConsumeSkb)
	sort.SliceStable(s.Events, func(i, j int) bool { return s.Events[i].Kernel < s.Events[j].Kernel })
	return s
}

func sortStories(out []*Story) {
	sort.Slice(out, func(i, j int) bool { return out[i].Events[0].Kernel < out[j].Events[0].Kernel })
}

// JoinLate adds a lone skb-less event e to the story of stories it came
// right after on its CPU, if its addresses fit that packet, and says
// whether it did.
// Before 6.10 the kernel traces udp_fail_queue_rcv_skb, which names only
// the socket, after it freed the datagram: the tracker has ended the
// datagram's story by then, but the story still waits here to settle.
func JoinLate(stories []*Story, e event.Event) bool {
	for i := len(stories) - 1; i >= 0; i-- {
		s := stories[i]
		last := s.Events[len(s.Events)-1]
		if s.Skb == 0 || last.CPU != e.CPU || e.Kernel < last.Kernel || e.Kernel-last.Kernel > LateWindow {
			continue
		}
		if Fits(last.Packet, e.Packet) {
			s.Events = append(s.Events, e)
			return true
		}
	}
	return false
}

// Claimed returns the route lookups that joined a story since the last
// call, for callers that print events as they arrive (a lookup is shown
// only once a traced packet claims it).
func (t *Tracker) Claimed() []event.Event {
	c := t.claimed
	t.claimed = nil
	return c
}
