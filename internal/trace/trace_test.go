package trace

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/skbtrail/skbtrail/internal/decode"
	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/diagnose"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/track"
)

// fakeOut records what the runner renders.
type fakeOut struct {
	events   []string
	stories  []uint64
	analyses []diag.Level
}

func (f *fakeOut) Event(e event.Event) error { f.events = append(f.events, e.Name); return nil }
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
	p, ok := event.ProbeNamed(name)
	if !ok {
		panic(name)
	}
	return uint32(p)
}

// rec encodes a ring buffer record of probe name for skb, at time ts.
func rec(t *testing.T, name string, skb, ts uint64) []byte {
	var r event.Record
	r.Probe, r.Skb, r.Ts = id(name), skb, ts
	r.Flags = 1
	r.Pkt.Family, r.Pkt.L4 = 4, 17
	copy(r.Pkt.Saddr[:], []byte{198, 18, 0, 1})
	copy(r.Pkt.Daddr[:], []byte{198, 18, 0, 2})
	if name == "kfree_skb" {
		r.Reason = 2
	}
	if name == event.FibTableLookup.String() {
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
	return &runner{cfg: cfg, dec: &decode.Decoder{}, tr: &track.Tracker{}}, out
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
	r.handle(rec(t, event.FibTableLookup.String(), 0, 1)) // waits for its packet
	if len(out.events) != 0 {
		t.Fatalf("a lone route lookup was shown: %v", out.events)
	}
	r.handle(rec(t, "net_dev_queue", 0x30, 2)) // claims it
	r.handle(rec(t, "consume_skb", 0x30, 3))
	want := []string{event.FibTableLookup.String(), "net_dev_queue", "consume_skb"}
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
		diag      diagnose.Options
		analyses  int
		done      bool
		delivered bool // a packet without findings above INFO is shown
	}{
		{"stop at error", diagnose.Options{Enabled: true}, 2, true, true},
		{"keep", diagnose.Options{Enabled: true, Keep: true}, 3, false, true},
		{"quiet", diagnose.Options{Enabled: true, Keep: true, Quiet: true}, 2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, out := newRunner(Config{Diag: tc.diag})
			r.diag = &diagnose.Diagnoser{}
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
	r, out := newRunner(Config{Diag: diagnose.Options{Enabled: true}})
	r.diag = &diagnose.Diagnoser{}
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
		r.handle(rec(t, event.FibTableLookup.String(), 0, 1))
		r.handle(rec(t, "net_dev_queue", 0x30, 2)) // would claim it
		if got := len(out.events) == 2; got != c.shown {
			t.Errorf("%q: events %v, want the lookup shown: %v", c.expr, out.events, c.shown)
		}
	}
}
