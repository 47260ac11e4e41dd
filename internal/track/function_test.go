package track

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

// With --ret, ip_rcv returns after the packet was consumed inside it: the
// story waits for the return, then ends as freed.
func TestReturnAfterFree(t *testing.T) {
	var tr Tracker
	entry := ev(1, 0, 0x100, "ip_rcv")
	entry.RetFollows = true
	ret := ev(3, 0, 0x100, "ip_rcv")
	ret.Probe = event.FuncReturn
	if out := tr.Add(entry); out != nil {
		t.Fatalf("story ended at entry: %v", out)
	}
	if out := tr.Add(ev(2, 0, 0x100, "consume_skb")); out != nil {
		t.Fatalf("story ended before ip_rcv returned")
	}
	out := tr.Add(ret)
	if len(out) != 1 || len(out[0].Events) != 3 || !out[0].Ended || out[0].Dropped {
		t.Fatalf("want one ended story of 3 events, got %+v", out)
	}
	// A return whose story is gone opens no story of its own.
	if out := tr.Add(ret); out != nil || tr.Open() != 0 {
		t.Errorf("lone return event: %v, %d open", out, tr.Open())
	}
}

// A clone's story knows its parent.
func TestCloneParent(t *testing.T) {
	var tr Tracker
	tr.Add(ev(1, 0, 0x100, "dev_queue_xmit"))
	c := ev(2, 0, 0x200, "skb_clone")
	c.Probe, c.Parent = event.FuncClone, 0x100
	tr.Add(c)
	out := tr.Add(ev(3, 0, 0x200, "consume_skb"))
	if len(out) != 1 || out[0].Skb != 0x200 || out[0].Parent != 0x100 {
		t.Fatalf("clone story: %+v", out)
	}
}
