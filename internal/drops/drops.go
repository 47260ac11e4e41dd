// Package drops turns the kernel's running drop counters (drops.Drops) into
// per-interval reports for `skbtrail drops`: how many packets were dropped
// in each interval and over the run, by reason, location, network namespace
// and device, with names from the running kernel.
//
// The kernel's counters only grow (from OpenDrops on); the Aggregator keeps
// each key's previous value and reports the difference, so a report is
// exact however long reading the map takes, and summing a key's interval
// counts over the run gives its total. Keys that stay idle while the map is
// filling up are deleted from the kernel map to make room (Prune); their
// totals stay here.
package drops

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skbtrail/skbtrail/internal/event"
)

// Key is what drops are reported by.
type Key struct {
	Reason   uint32
	Location uint64
	Netns    uint32
	Device   string
}

// Row is one key's drops, named.
type Row struct {
	Reason   string // the kernel's name: NO_SOCKET, NETFILTER_DROP, ...
	Location string // the dropping function: __udp4_lib_rcv+0x5e3
	Netns    uint32
	Device   string   // "" when the skb had no device
	Count    uint64   // drops in the interval (in Totals: over the run)
	Total    uint64   // drops over the run so far
	Stack    []string // the key's most frequent kernel stack in the interval, with --stack
}

// Interval is one report: what was dropped since the previous one.
type Interval struct {
	Time     time.Time     // when the counters were read
	Duration time.Duration // since the previous read
	Rows     []Row         // keys with drops in the interval, most first
	Drops    uint64        // sum of Rows' Count
	Total    uint64        // drops over the run so far
	Lost     uint64        // drops not counted in the interval: the kernel map was full
	LostAll  uint64        // the same over the run
	Keys     int           // keys in the kernel map
}

// Namer gives names to the kernel's numbers. Any field may be nil.
type Namer struct {
	Reason func(code uint32) string
	Symbol func(addr uint64) string
	// Stack returns the frames of a stack id, innermost first.
	Stack func(id int32) ([]uint64, error)
}

// Aggregator computes intervals from successive reads of the counters.
// It is not safe for concurrent use.
type Aggregator struct {
	Namer Namer

	prev   map[event.DropKey]uint64 // last value read, per kernel key
	idle   map[event.DropKey]int    // intervals since the key last grew
	totals map[Key]uint64
	full   uint64
	last   time.Time
	names  map[Key][2]string
}

// New returns an Aggregator that starts counting at start.
func New(n Namer, start time.Time) *Aggregator {
	return &Aggregator{
		Namer:  n,
		prev:   map[event.DropKey]uint64{},
		idle:   map[event.DropKey]int{},
		totals: map[Key]uint64{},
		names:  map[Key][2]string{},
		last:   start,
	}
}

// Update takes a read of the kernel counters (cumulative, as drops.Drops.Read
// returns them) and the map-full counter at time now, and returns what
// changed since the previous Update.
func (a *Aggregator) Update(now time.Time, counts []event.DropCount, full uint64) Interval {
	iv := Interval{Time: now, Duration: now.Sub(a.last), Keys: len(counts)}
	a.last = now
	type acc struct {
		n        uint64
		stack    int32
		stackMax uint64
	}
	delta := map[Key]*acc{}
	seen := make(map[event.DropKey]bool, len(counts))
	for _, c := range counts {
		seen[c.Key] = true
		prev, ok := a.prev[c.Key]
		d := c.Count - prev
		if c.Count < prev { // deleted and added again
			d = c.Count
		}
		a.prev[c.Key] = c.Count
		if d == 0 && ok {
			a.idle[c.Key]++
			continue
		}
		a.idle[c.Key] = 0
		if d == 0 {
			continue
		}
		k := Key{Reason: c.Key.Reason, Location: c.Key.Location, Netns: c.Key.Netns, Device: c.Key.Ifname}
		x := delta[k]
		if x == nil {
			x = &acc{stack: -1}
			delta[k] = x
		}
		x.n += d
		if c.Key.Stack >= 0 && d > x.stackMax {
			x.stack, x.stackMax = c.Key.Stack, d
		}
	}
	for k := range a.prev {
		if !seen[k] {
			delete(a.prev, k)
			delete(a.idle, k)
		}
	}
	for k, x := range delta {
		a.totals[k] += x.n
		r := a.row(k, x.n)
		if x.stack >= 0 {
			r.Stack = a.stack(x.stack, r.Location)
		}
		iv.Rows = append(iv.Rows, r)
		iv.Drops += x.n
	}
	sortRows(iv.Rows)
	if full >= a.full {
		iv.Lost = full - a.full
	}
	a.full = full
	iv.LostAll = full
	for _, n := range a.totals {
		iv.Total += n
	}
	return iv
}

// Totals returns every key's drops over the run (Count and Total both),
// most first.
func (a *Aggregator) Totals() []Row {
	rows := make([]Row, 0, len(a.totals))
	for k, n := range a.totals {
		rows = append(rows, a.row(k, n))
	}
	sortRows(rows)
	return rows
}

// Prune returns the kernel keys that have not grown for at least idle
// intervals, and forgets them: the caller deletes them from the kernel map.
// A key that comes back later starts again from zero, which Update handles.
func (a *Aggregator) Prune(idle int) []event.DropKey {
	var out []event.DropKey
	for k, n := range a.idle {
		if n >= idle {
			out = append(out, k)
			delete(a.idle, k)
			delete(a.prev, k)
		}
	}
	return out
}

func (a *Aggregator) row(k Key, n uint64) Row {
	nm, ok := a.names[k]
	if !ok {
		nm = [2]string{a.reason(k.Reason), a.symbol(k.Location)}
		a.names[k] = nm
	}
	return Row{Reason: nm[0], Location: nm[1], Netns: k.Netns, Device: k.Device, Count: n, Total: a.totals[k]}
}

func (a *Aggregator) reason(code uint32) string {
	if a.Namer.Reason != nil {
		return a.Namer.Reason(code)
	}
	return "UNKNOWN_" + strconv.FormatUint(uint64(code), 10)
}

func (a *Aggregator) symbol(addr uint64) string {
	if a.Namer.Symbol != nil {
		return a.Namer.Symbol(addr)
	}
	return "0x" + strconv.FormatUint(addr, 16)
}

// stack names a stack's frames, starting at the dropping function: the
// frames above it are the tracing machinery and the free function.
func (a *Aggregator) stack(id int32, location string) []string {
	if a.Namer.Stack == nil {
		return nil
	}
	frames, err := a.Namer.Stack(id)
	if err != nil || len(frames) == 0 {
		return nil
	}
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		out = append(out, a.symbol(f))
	}
	fn := funcName(location)
	for i, s := range out {
		if fn != "" && funcName(s) == fn {
			return out[i:]
		}
	}
	return out
}

// funcName is the function of a symbolized address: "ip_rcv+0x1a" → "ip_rcv".
func funcName(s string) string {
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	if strings.HasPrefix(s, "0x") {
		return ""
	}
	return s
}

func sortRows(rows []Row) {
	slices.SortFunc(rows, func(x, y Row) int {
		return cmp.Or(
			cmp.Compare(y.Count, x.Count),
			cmp.Compare(y.Total, x.Total),
			cmp.Compare(x.Reason, y.Reason),
			cmp.Compare(x.Location, y.Location),
			cmp.Compare(x.Netns, y.Netns),
			cmp.Compare(x.Device, y.Device),
		)
	})
}
