package diagnose

import (
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/limits"
	"github.com/skbtrail/skbtrail/internal/track"
)

// At most HitsLimit.Max rule trace events are kept, the newest; the
// forgotten ones are counted.
func TestHitsLimit(t *testing.T) {
	limits.Reset()
	saved := HitsLimit.Max
	HitsLimit.Max = 100
	defer func() { HitsLimit.Max = saved }()
	d := &Diagnoser{}
	for i := 0; i < 250; i++ {
		d.keep(diag.RuleHit{Handle: uint64(i)})
	}
	if len(d.hits) != 100 || d.hits[0].Handle != 150 || d.hits[99].Handle != 249 {
		t.Errorf("kept %d hits, %d..%d; want the newest 100, 150..249", len(d.hits), d.hits[0].Handle, d.hits[len(d.hits)-1].Handle)
	}
	if HitsLimit.Hits() != 150 {
		t.Errorf("%d hits counted, want 150", HitsLimit.Hits())
	}
}

// Beyond QueueLimit.Max stories waiting to settle, the oldest are analysed
// at once, and counted.
func TestQueueLimit(t *testing.T) {
	limits.Reset()
	saved := QueueLimit.Max
	QueueLimit.Max = 10
	defer func() { QueueLimit.Max = saved }()
	d := &Diagnoser{}
	for i := 0; i < 25; i++ {
		d.Add(&track.Story{Skb: uint64(0x100 + i), Ended: true,
			Events: []event.Event{{Probe: event.ConsumeSkb, Name: "consume_skb", Skb: uint64(0x100 + i), Kernel: uint64(i)}}})
	}
	got := d.Ready(false) // none has settled yet
	if len(got) != 15 || len(d.queue) != 10 {
		t.Errorf("%d analysed early, %d waiting; want 15 and 10", len(got), len(d.queue))
	}
	if len(got) > 0 && got[0].Story.Skb != 0x100 {
		t.Errorf("the first analysed is %#x, want the oldest 0x100", got[0].Story.Skb)
	}
	if QueueLimit.Hits() != 15 {
		t.Errorf("%d counted, want 15", QueueLimit.Hits())
	}
	if got := d.Ready(false); len(got) != 0 {
		t.Errorf("%d more analysed before they settled", len(got))
	}
	time.Sleep(settle + 10*time.Millisecond)
	if got := d.Ready(false); len(got) != 10 {
		t.Errorf("%d analysed once settled, want 10", len(got))
	}
}
