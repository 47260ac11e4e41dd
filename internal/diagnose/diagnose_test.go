package diagnose

import (
	"net/netip"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Before 6.10 udp_fail_queue_rcv_skb (socket only) comes right after the
// datagram was freed: it joins the datagram's story, which is still
// settling, when it is on the same CPU, soon after, and fits the packet.
func TestLateSocketEventJoinsSettlingStory(t *testing.T) {
	b, a := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")
	dgram := event.Packet{Source: event.FromHeaders, Family: 4, Proto: 17, Src: a, Dst: b, Sport: 5000, Dport: 7777}
	sock := event.Packet{Source: event.FromSock, Family: 4, Proto: 17, Dst: b, Dport: 7777}
	story := &track.Story{Skb: 0x10, Events: []event.Event{{Probe: event.KfreeSkb, Name: "kfree_skb", Skb: 0x10, CPU: 1, Kernel: 1000, Packet: dgram}}}
	d := &Diagnoser{}
	d.Add(story)
	for _, c := range []struct {
		name string
		e    event.Event
		join bool
	}{
		{"other CPU", event.Event{Probe: event.UDPFailQueueRcvSkb, Name: "udp_fail_queue_rcv_skb", CPU: 0, Kernel: 2000, Packet: sock}, false},
		{"too late", event.Event{Probe: event.UDPFailQueueRcvSkb, Name: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 1000 + track.LateWindow + 1, Packet: sock}, false},
		{"other port", event.Event{Probe: event.UDPFailQueueRcvSkb, Name: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 2000, Packet: func() event.Packet { p := sock; p.Dport = 9; return p }()}, false},
		{"its socket", event.Event{Probe: event.UDPFailQueueRcvSkb, Name: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 2000, Packet: sock}, true},
	} {
		n, q := len(story.Events), len(d.queue)
		d.Add(&track.Story{Events: []event.Event{c.e}})
		if joined := len(story.Events) == n+1 && len(d.queue) == q; joined != c.join {
			t.Errorf("%s: joined %v, want %v (story %d events, queue %d)", c.name, joined, c.join, len(story.Events), len(d.queue))
		}
	}
}
