// Package limits holds the hard bounds that keep a long run's memory and
// work from growing with traffic, and counts every time one is hit, so
// that none is ever silent: the first hit of each is said at once (Warn),
// and all of them at the end of the run (Report).
package limits

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// Limit is one bound: at most Max of something, and what happens to what
// goes beyond it.
type Limit struct {
	Name   string // "stories in flight"
	Max    int
	Unit   string // "", or "/s" for a rate
	Beyond string // what is done with the excess: "events not followed"
	hits   atomic.Uint64
	warned atomic.Bool
}

var (
	mu   sync.Mutex
	all  []*Limit
	warn func(*Limit)
)

// New registers a limit.
func New(name string, max int, unit, beyond string) *Limit {
	l := &Limit{Name: name, Max: max, Unit: unit, Beyond: beyond}
	mu.Lock()
	all = append(all, l)
	mu.Unlock()
	return l
}

// Hit counts one thing beyond the limit.
func (l *Limit) Hit() { l.Add(1) }

// Add counts n things beyond the limit.
func (l *Limit) Add(n uint64) {
	if n == 0 {
		return
	}
	l.hits.Add(n)
	if !l.warned.Swap(true) {
		mu.Lock()
		w := warn
		mu.Unlock()
		if w != nil {
			w(l)
		}
	}
}

// Hits returns how many things went beyond the limit.
func (l *Limit) Hits() uint64 { return l.hits.Load() }

// String says the limit: "stories in flight (at most 65536)".
func (l *Limit) String() string {
	return fmt.Sprintf("%s (at most %d%s)", l.Name, l.Max, l.Unit)
}

// Warn writes a line to w the first time each limit is hit (nil: none).
func Warn(w io.Writer) {
	mu.Lock()
	defer mu.Unlock()
	if w == nil {
		warn = nil
		return
	}
	warn = func(l *Limit) {
		fmt.Fprintf(w, "skbtrail: warning: limit reached: %s: %s; counted, totals at exit\n", l, l.Beyond)
	}
}

// Hit is a limit that was hit, for reports.
type Hit struct {
	Limit *Limit
	Count uint64
}

// Hits returns the limits hit so far, by name.
func Hits() []Hit {
	mu.Lock()
	defer mu.Unlock()
	var out []Hit
	for _, l := range all {
		if n := l.Hits(); n > 0 {
			out = append(out, Hit{l, n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Limit.Name < out[j].Limit.Name })
	return out
}

// Report writes one line per limit hit during the run, and nothing if
// none was.
func Report(w io.Writer) {
	for _, h := range Hits() {
		fmt.Fprintf(w, "skbtrail: limit %s was reached: %d %s\n", h.Limit, h.Count, h.Limit.Beyond)
	}
}

// Reset zeroes every count (for tests).
func Reset() {
	mu.Lock()
	defer mu.Unlock()
	for _, l := range all {
		l.hits.Store(0)
		l.warned.Store(false)
	}
}

// Rate is a token bucket: at most Max events per second, with bursts of
// Max.
type Rate struct {
	*Limit
	mu     sync.Mutex
	tokens float64
	last   int64 // unix ns of the last refill
	now    func() int64
}

// NewRate registers a limit of max per second.
func NewRate(name string, max int, beyond string, now func() int64) *Rate {
	return &Rate{Limit: New(name, max, "/s", beyond), tokens: float64(max), now: now}
}

// Allow takes a token, or counts a hit and says no.
func (r *Rate) Allow() bool {
	r.mu.Lock()
	t := r.now()
	if r.last != 0 {
		r.tokens = min(float64(r.Max), r.tokens+float64(t-r.last)/1e9*float64(r.Max))
	}
	r.last = t
	ok := r.tokens >= 1
	if ok {
		r.tokens--
	}
	r.mu.Unlock()
	if !ok {
		r.Hit()
	}
	return ok
}
