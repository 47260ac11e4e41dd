package trace

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/track"
)

// fakeOut records what the runner renders.
type fakeOut struct {
	events   []string
	stories  []uint64
	analyses []diag.Level
}

func (f *fakeOut) Event(e event.Event) error { f.events = append(f.events, e.Probe); return nil }
func (f *fakeOut) Story(s *track.Story) error {
	f.stories = append(f.stories, s.Skb)
	return nil
}
func (f *fakeOut) Analysis(a *diag.Analysis) error {
	f.analyses = append(f.analyses, a.Worst())
	return nil
}
func (f *fakeOut) Flush() error { return nil }

func id(name string) uint32 {
	for _, t := range probe.Catalog {
		if t.Name == name {
			return t.ID
		}
	}
	panic(name)
}

// rec encodes a ring buffer record of probe name for skb, at time ts.
func rec(t *testing.T, name string, skb, ts uint64) []byte {
	var r probe.Record
	r.Probe, r.Skb, r.Ts = id(name), skb, ts
	r.Flags = 1
	r.Pkt.Family, r.Pkt.L4 = 4, 17
	copy(r.Pkt.Saddr[:], []byte{198, 18, 0, 1})
	copy(r.Pkt.Daddr[:], []byte{198, 18, 0, 2})
	if name == "kfree_skb" {
		r.Reason = 2
	}
	if name == probe.FibTableLookup {
		r.Flags = 4
	}
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, &r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newRunner(cfg Config) (*runner, *fakeOut) {
	out := &fakeOut{}
	cfg.Out = out
	return &runner{cfg: cfg, dec: &event.Decoder{}, tr: &track.Tracker{}}, out
}

func TestCountStopsAfterPackets(t *testing.T) {
	r, out := newRunner(Config{Count: 2})
	for i, name := range []string{"netif_receive_skb", "consume_skb"} {
		r.handle(rec(t, name, 0x10, uint64(i+1)))
	}
	if r.done {
		t.Fatal("done after one packet of two")
	}
	r.handle(rec(t, "netif_receive_skb", 0x20, 3))
	r.handle(rec(t, "kfree_skb", 0x20, 4))
	if !r.done || len(out.stories) != 2 || r.st.Packets != 2 {
		t.Fatalf("done=%v stories=%v packets=%d, want done after 2", r.done, out.stories, r.st.Packets)
	}
}

func TestBasicShowsClaimedLookupsOnly(t *testing.T) {
	r, out := newRunner(Config{Basic: true})
	r.handle(rec(t, probe.FibTableLookup, 0, 1)) // waits for its packet
	if len(out.events) != 0 {
		t.Fatalf("a lone route lookup was shown: %v", out.events)
	}
	r.handle(rec(t, "net_dev_queue", 0x30, 2)) // claims it
	r.handle(rec(t, "consume_skb", 0x30, 3))
	want := []string{probe.FibTableLookup, "net_dev_queue", "consume_skb"}
	if len(out.events) != len(want) {
		t.Fatalf("events %v, want %v", out.events, want)
	}
	for i := range want {
		if out.events[i] != want[i] {
			t.Fatalf("events %v, want %v", out.events, want)
		}
	}
	if len(out.stories) != 0 {
		t.Errorf("--basic rendered whole stories: %v", out.stories)
	}
}

func TestDiagStopsAtFirstErrorUnlessKeep(t *testing.T) {
	for _, tc := range []struct {
		name      string
		diag      Diag
		analyses  int
		done      bool
		delivered bool // a packet without findings above INFO is shown
	}{
		{"stop at error", Diag{Enabled: true}, 2, true, true},
		{"keep", Diag{Enabled: true, Keep: true}, 3, false, true},
		{"quiet", Diag{Enabled: true, Keep: true, Quiet: true}, 2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, out := newRunner(Config{Diag: tc.diag})
			r.diag = &diagnoser{}
			r.handle(rec(t, "netif_receive_skb", 0x10, 1))
			r.handle(rec(t, "consume_skb", 0x10, 2)) // delivered: INFO
			r.handle(rec(t, "kfree_skb", 0x20, 3))   // dropped: ERROR
			r.handle(rec(t, "kfree_skb", 0x30, 4))   // dropped: ERROR
			r.drain(true)
			if len(out.analyses) != tc.analyses || r.done != tc.done {
				t.Fatalf("analyses %v done %v, want %d analyses, done %v", out.analyses, r.done, tc.analyses, tc.done)
			}
			if (out.analyses[0] == diag.Info) != tc.delivered {
				t.Errorf("first analysis %v", out.analyses[0])
			}
		})
	}
}

func TestDiagWaitsForStoriesToSettle(t *testing.T) {
	r, out := newRunner(Config{Diag: Diag{Enabled: true}})
	r.diag = &diagnoser{}
	r.handle(rec(t, "kfree_skb", 0x20, 1))
	r.drain(false)
	if len(out.analyses) != 0 {
		t.Fatal("analysed before the story settled")
	}
	r.drain(true)
	if len(out.analyses) != 1 {
		t.Fatal("not analysed at the end")
	}
}

// Before 6.10 udp_fail_queue_rcv_skb (socket only) comes right after the
// datagram was freed: it joins the datagram's story, which is still
// settling, when it is on the same CPU, soon after, and fits the packet.
func TestLateSocketEventJoinsSettlingStory(t *testing.T) {
	b, a := netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")
	dgram := event.Packet{Source: event.FromHeaders, Family: 4, Proto: 17, Src: a, Dst: b, Sport: 5000, Dport: 7777}
	sock := event.Packet{Source: event.FromSock, Family: 4, Proto: 17, Dst: b, Dport: 7777}
	story := &track.Story{Skb: 0x10, Events: []event.Event{{Probe: "kfree_skb", Skb: 0x10, CPU: 1, Kernel: 1000, Packet: dgram}}}
	d := &diagnoser{}
	d.add(story)
	for _, c := range []struct {
		name string
		e    event.Event
		join bool
	}{
		{"other CPU", event.Event{Probe: "udp_fail_queue_rcv_skb", CPU: 0, Kernel: 2000, Packet: sock}, false},
		{"too late", event.Event{Probe: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 1000 + track.LateWindow + 1, Packet: sock}, false},
		{"other port", event.Event{Probe: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 2000, Packet: func() event.Packet { p := sock; p.Dport = 9; return p }()}, false},
		{"its socket", event.Event{Probe: "udp_fail_queue_rcv_skb", CPU: 1, Kernel: 2000, Packet: sock}, true},
	} {
		n, q := len(story.Events), len(d.queue)
		d.add(&track.Story{Events: []event.Event{c.e}})
		if joined := len(story.Events) == n+1 && len(d.queue) == q; joined != c.join {
			t.Errorf("%s: joined %v, want %v (story %d events, queue %d)", c.name, joined, c.join, len(story.Events), len(d.queue))
		}
	}
}

func TestExprRejectsLookups(t *testing.T) {
	for _, c := range []struct {
		expr  string
		shown bool
	}{{"udp and dst host 198.18.0.2", true}, {"tcp", false}, {"udp and ip[8] < 10", false}} {
		prog, err := pcapfilter.Compile(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		r, out := newRunner(Config{Basic: true, Expr: c.expr, ExprBPF: prog})
		r.handle(rec(t, probe.FibTableLookup, 0, 1))
		r.handle(rec(t, "net_dev_queue", 0x30, 2)) // would claim it
		if got := len(out.events) == 2; got != c.shown {
			t.Errorf("%q: events %v, want the lookup shown: %v", c.expr, out.events, c.shown)
		}
	}
}
