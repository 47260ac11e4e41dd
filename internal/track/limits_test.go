package track

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/limits"
)

// Each bound of the tracker holds, is counted when hit, and loses no more
// than it says.
func TestLimits(t *testing.T) {
	for _, c := range []struct {
		name  string
		tr    Tracker
		feed  func(tr *Tracker) []*Story
		limit *limits.Limit
		hits  uint64
		check func(t *testing.T, tr *Tracker, out []*Story)
	}{
		{
			name: "stories in flight",
			tr:   Tracker{MaxOpen: 10},
			feed: func(tr *Tracker) []*Story {
				for i := uint64(0); i < 25; i++ {
					tr.Add(ev(i, 0, 0x1000+i, "net_dev_queue"))
				}
				// One of the followed packets ends; a new one may start.
				out := tr.Add(ev(30, 0, 0x1000, "consume_skb"))
				tr.Add(ev(31, 0, 0x9999, "net_dev_queue"))
				return out
			},
			limit: StoriesLimit, hits: 15,
			check: func(t *testing.T, tr *Tracker, out []*Story) {
				if tr.Open() != 10 || len(out) != 1 {
					t.Errorf("open %d, ended %d; want 10 open (the limit), 1 ended", tr.Open(), len(out))
				}
			},
		},
		{
			name: "events per story",
			tr:   Tracker{MaxEvents: 8},
			feed: func(tr *Tracker) []*Story {
				for i := uint64(0); i < 100; i++ {
					tr.Add(ev(i, 0, 0x10, "net_dev_queue"))
				}
				return tr.Add(ev(200, 0, 0x10, "kfree_skb"))
			},
			limit: EventsLimit, hits: 93,
			check: func(t *testing.T, tr *Tracker, out []*Story) {
				if len(out) != 1 {
					t.Fatalf("%d stories ended, want 1", len(out))
				}
				s := out[0]
				if len(s.Events) != 8 || s.Omitted != 93 {
					t.Errorf("%d events, %d omitted; want 8 and 93", len(s.Events), s.Omitted)
				}
				if _, ok := s.Drop(); !ok || !s.Ended || !s.Dropped {
					t.Errorf("the drop that ended the story was lost: %+v", s)
				}
				if s.Events[0].Kernel != 0 {
					t.Errorf("the first event was lost")
				}
			},
		},
		{
			name: "route lookups waiting",
			tr:   Tracker{MaxPending: 4},
			feed: func(tr *Tracker) []*Story {
				for i := uint64(0); i < 9; i++ {
					tr.Add(ev(i, 1, 0, "fib_table_lookup"))
				}
				return nil
			},
			limit: PendingLimit, hits: 5,
			check: func(t *testing.T, tr *Tracker, out []*Story) {
				if n := len(tr.pending[1]); n != 4 {
					t.Errorf("%d lookups waiting, want 4", n)
				}
			},
		},
		{
			name: "freed clones waiting",
			tr:   Tracker{MaxHeld: 3},
			feed: func(tr *Tracker) []*Story {
				var out []*Story
				for i := uint64(0); i < 7; i++ {
					e := ev(i, 0, 0x100+i, "kfree_skb")
					e.Head = 0x5000 + i
					out = append(out, tr.Add(e)...)
				}
				return out
			},
			limit: HeldLimit, hits: 4,
			check: func(t *testing.T, tr *Tracker, out []*Story) {
				if len(tr.held) != 3 || len(out) != 4 {
					t.Errorf("%d held, %d handed out; want 3 and 4", len(tr.held), len(out))
				}
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			limits.Reset()
			tr := c.tr
			out := c.feed(&tr)
			if got := c.limit.Hits(); got != c.hits {
				t.Errorf("%s: %d hits, want %d", c.limit, got, c.hits)
			}
			c.check(t, &tr, out)
		})
	}
}
