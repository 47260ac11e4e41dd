package track

import (
	"net/netip"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/event"
)

var (
	a = netip.MustParseAddr("198.18.0.1")
	b = netip.MustParseAddr("198.18.0.2")
)

// ev is an event of the tracepoint called name, or else an entry of the
// function called name.
func ev(t uint64, cpu uint32, skb uint64, name string) event.Event {
	src := event.FromHeaders
	switch name {
	case "fib_table_lookup":
		src = event.FromFlow
	case "tcp_receive_reset":
		src = event.FromSock
	}
	p, ok := event.ProbeNamed(name)
	if !ok {
		p = event.FuncEntry
	}
	return event.Event{Kernel: t, CPU: cpu, Skb: skb, Probe: p, Name: name,
		Packet: event.Packet{Source: src, Family: 4, Proto: 1, Src: a, Dst: b}}
}

// udp makes e a UDP packet src:sport > dst:dport; a socket event's
// addresses are the socket's (local as the destination).
func udp(e event.Event, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) event.Event {
	if e.Skb == 0 {
		e.Packet.Source = event.FromSock
	}
	e.Packet.Proto, e.Packet.Src, e.Packet.Sport, e.Packet.Dst, e.Packet.Dport = 17, src, sport, dst, dport
	return e
}

func TestStories(t *testing.T) {
	ms := uint64(time.Millisecond)
	tests := []struct {
		name    string
		events  []event.Event
		ends    []int // after which event index a story completes (its length)
		dropped []bool
		claimed int // route lookups that joined a story
	}{
		{
			name: "delivered",
			events: []event.Event{
				ev(1, 0, 0x10, "net_dev_queue"),
				ev(2, 0, 0x10, "netif_receive_skb"),
				ev(3, 0, 0x10, "consume_skb"),
			},
			ends:    []int{3},
			dropped: []bool{false},
		},
		{
			name: "two packets interleaved, one dropped",
			events: []event.Event{
				ev(1, 0, 0x10, "net_dev_queue"),
				ev(2, 1, 0x20, "net_dev_queue"),
				ev(3, 1, 0x20, "kfree_skb"),
				ev(4, 0, 0x10, "consume_skb"),
			},
			ends:    []int{2, 2},
			dropped: []bool{true, false},
		},
		{
			name: "route lookup before the skb joins its story",
			events: []event.Event{
				ev(1*ms, 1, 0, "fib_table_lookup"),
				ev(2*ms, 1, 0x30, "net_dev_queue"),
				ev(3*ms, 1, 0x30, "consume_skb"),
			},
			ends:    []int{3},
			dropped: []bool{false},
			claimed: 1,
		},
		{
			name: "route lookup during the story joins it",
			events: []event.Event{
				ev(1*ms, 1, 0x30, "netif_receive_skb"),
				ev(2*ms, 1, 0, "fib_table_lookup"),
				ev(3*ms, 1, 0x30, "kfree_skb"),
			},
			ends:    []int{3},
			dropped: []bool{true},
			claimed: 1,
		},
		{
			name: "skb-less reset alone is its own story",
			events: []event.Event{
				ev(1, 0, 0, "tcp_receive_reset"),
			},
			ends:    []int{1},
			dropped: []bool{false},
		},
		{
			name: "reset joins the packet that carried it",
			events: []event.Event{
				ev(1, 0, 0x40, "netif_receive_skb"),
				ev(2, 0, 0, "tcp_receive_reset"),
				ev(3, 0, 0x40, "consume_skb"),
			},
			ends:    []int{3},
			dropped: []bool{false},
			claimed: 1,
		},
		{
			name: "reset on another CPU does not join",
			events: []event.Event{
				ev(1, 0, 0x40, "netif_receive_skb"),
				ev(2, 1, 0, "tcp_receive_reset"),
				ev(3, 0, 0x40, "consume_skb"),
			},
			ends:    []int{1, 2},
			dropped: []bool{false, false},
		},
		{
			// udp_fail_queue_rcv_skb names the socket, not the skb; a UDP
			// server's socket has no remote end.
			name: "event of an unconnected socket joins its datagram",
			events: []event.Event{
				udp(ev(1, 0, 0x50, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(2, 0, 0, "udp_fail_queue_rcv_skb"), netip.IPv4Unspecified(), 0, b, 53),
				udp(ev(3, 0, 0x50, "kfree_skb"), a, 40000, b, 53),
			},
			ends:    []int{3},
			dropped: []bool{true},
			claimed: 1,
		},
		{
			name: "socket event joins the datagram handled now, not one queued before",
			events: []event.Event{
				udp(ev(1, 0, 0x60, "netif_receive_skb"), a, 40000, b, 53), // queued on the socket, never freed
				udp(ev(2, 0, 0x61, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(3, 0, 0x62, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(4, 0, 0, "udp_fail_queue_rcv_skb"), netip.IPv4Unspecified(), 0, b, 53),
				udp(ev(5, 0, 0x62, "kfree_skb"), a, 40000, b, 53),
				udp(ev(6, 1, 0x60, "consume_skb"), a, 40000, b, 53), // read at last
				udp(ev(7, 1, 0x61, "consume_skb"), a, 40000, b, 53),
			},
			ends:    []int{3, 2, 2},
			dropped: []bool{true, false, false},
			claimed: 1,
		},
		{
			name: "socket bound to any address joins its datagram",
			events: []event.Event{
				udp(ev(1, 0, 0x50, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(2, 0, 0, "udp_fail_queue_rcv_skb"), netip.IPv4Unspecified(), 0, netip.IPv4Unspecified(), 53),
				udp(ev(3, 0, 0x50, "kfree_skb"), a, 40000, b, 53),
			},
			ends:    []int{3},
			dropped: []bool{true},
			claimed: 1,
		},
		{
			name: "socket of another port does not join",
			events: []event.Event{
				udp(ev(1, 0, 0x50, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(2, 0, 0, "udp_fail_queue_rcv_skb"), netip.IPv4Unspecified(), 0, b, 54),
				udp(ev(3, 0, 0x50, "kfree_skb"), a, 40000, b, 53),
			},
			ends:    []int{1, 2},
			dropped: []bool{false, true},
		},
		{
			name: "connected socket of another peer does not join",
			events: []event.Event{
				udp(ev(1, 0, 0x50, "netif_receive_skb"), a, 40000, b, 53),
				udp(ev(2, 0, 0, "udp_fail_queue_rcv_skb"), a, 40001, b, 53),
				udp(ev(3, 0, 0x50, "kfree_skb"), a, 40000, b, 53),
			},
			ends:    []int{1, 2},
			dropped: []bool{false, true},
		},
		{
			name: "address reused after free starts a new story",
			events: []event.Event{
				ev(1, 0, 0x10, "consume_skb"),
				ev(2, 0, 0x10, "net_dev_queue"),
				ev(3, 0, 0x10, "consume_skb"),
			},
			ends:    []int{1, 2},
			dropped: []bool{false, false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			var got []*Story
			for _, e := range tc.events {
				got = append(got, tr.Add(e)...)
			}
			if len(got) != len(tc.ends) {
				t.Fatalf("got %d stories, want %d", len(got), len(tc.ends))
			}
			for i, s := range got {
				if len(s.Events) != tc.ends[i] || s.Dropped != tc.dropped[i] || (s.Packet() && !s.Ended) {
					t.Errorf("story %d: %d events dropped=%v ended=%v, want %d dropped=%v",
						i, len(s.Events), s.Dropped, s.Ended, tc.ends[i], tc.dropped[i])
				}
				for j := 1; j < len(s.Events); j++ {
					if s.Events[j].Kernel < s.Events[j-1].Kernel {
						t.Errorf("story %d not in time order", i)
					}
				}
			}
			if tr.Open() != 0 {
				t.Errorf("%d stories still open", tr.Open())
			}
			if c := tr.Claimed(); len(c) != tc.claimed {
				t.Errorf("%d route lookups claimed, want %d", len(c), tc.claimed)
			}
			if c := tr.Claimed(); len(c) != 0 {
				t.Errorf("Claimed again: %d route lookups, want none", len(c))
			}
		})
	}
}

func TestExpireAndFlush(t *testing.T) {
	tr := Tracker{Idle: time.Second}
	tr.Add(ev(uint64(time.Second), 0, 0x10, "netif_receive_skb"))
	tr.Add(ev(uint64(2*time.Second), 0, 0x20, "netif_receive_skb"))
	tr.Add(ev(uint64(2*time.Second), 1, 0, "fib_table_lookup"))
	got := tr.Expire(uint64(2*time.Second + 500*time.Millisecond))
	if len(got) != 1 || got[0].Skb != 0x10 || got[0].Ended {
		t.Fatalf("Expire: got %d stories (%+v), want the idle 0x10 only (an unclaimed lookup is forgotten)", len(got), got)
	}
	rest := tr.Flush()
	if len(rest) != 1 || rest[0].Skb != 0x20 || rest[0].Ended {
		t.Fatalf("Flush: got %+v, want the open 0x20 unfinished", rest)
	}
	if tr.Open() != 0 {
		t.Fatal("tracker not empty after Flush")
	}
}

// A clone the neighbour code frees before its original leaves joins the
// original's story instead of counting as a packet of its own.
func TestCloneFreedFirstJoinsOriginal(t *testing.T) {
	ms := uint64(time.Millisecond)
	withHead := func(e event.Event, head uint64) event.Event { e.Head = head; return e }
	var tr Tracker
	var got []*Story
	got = append(got, tr.Add(withHead(ev(1*ms, 0, 0x50, "consume_skb"), 0xaa))...) // the clone
	if len(got) != 0 {
		t.Fatalf("a clone freed where first seen was shown at once: %+v", got)
	}
	got = append(got, tr.Add(withHead(ev(2*ms, 0, 0x60, "net_dev_queue"), 0xaa))...)
	got = append(got, tr.Add(withHead(ev(3*ms, 0, 0x60, "consume_skb"), 0xaa))...)
	if len(got) != 1 || got[0].Skb != 0x60 || len(got[0].Events) != 3 || got[0].Events[0].Skb != 0x50 {
		t.Fatalf("got %d stories, want one of 0x60 with the clone's event first: %+v", len(got), got)
	}
	if d, ok := got[0].Drop(); ok {
		t.Errorf("a delivered packet reports a drop: %+v", d)
	}

	// One that no packet claims is shown after a while.
	tr.Add(withHead(ev(10*ms, 0, 0x70, "kfree_skb"), 0xbb))
	if out := tr.Expire(10*ms + cloneWindow/2); len(out) != 0 {
		t.Fatalf("shown before its window passed: %+v", out)
	}
	if out := tr.Expire(10*ms + cloneWindow + ms); len(out) != 1 || out[0].Skb != 0x70 || !out[0].Dropped {
		t.Fatalf("Expire = %+v, want the lone drop of 0x70", out)
	}

	// A buffer reused by an unrelated packet does not join it.
	tr.Add(withHead(ev(20*ms, 0, 0x80, "consume_skb"), 0xcc))
	other := withHead(ev(21*ms, 0, 0x90, "net_dev_queue"), 0xcc)
	other.Packet.ICMPSeq = 9
	tr.Add(other)
	if out := tr.Flush(); len(out) != 2 {
		t.Fatalf("Flush = %d stories, want the unrelated two apart", len(out))
	}
}
