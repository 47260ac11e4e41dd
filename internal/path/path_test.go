package path

import (
	"net/netip"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

const nsA, nsR, nsB uint32 = 4026532001, 4026532002, 4026532003

var echo = event.Packet{Source: event.FromHeaders, Family: 4, Proto: 1,
	Src: netip.MustParseAddr("198.18.5.1"), Dst: netip.MustParseAddr("198.18.6.2"), ICMPType: 8}

func ev(p event.Probe, ns uint32, dev string) event.Event {
	return event.Event{Probe: p, Netns: ns, Ifname: dev, Skb: 0x10, Packet: echo}
}

// ports: veth-r1 and veth-r2 are ports of br0 in R.
type ports map[string]string

func (p ports) Bridge(ns uint32, dev string) (string, bool) {
	b, ok := p[dev]
	return b, ok && ns == nsR
}

func TestBuild(t *testing.T) {
	br := ports{"veth-r1": "br0", "veth-r2": "br0"}
	nat := echo
	nat.Dst = netip.MustParseAddr("198.18.7.2")
	obsBridge := ev(event.NFObserve, nsR, "veth-r1")
	obsBridge.Facts.Hook.Family = event.FamilyBridge
	for _, c := range []struct {
		name    string
		events  []event.Event
		links   Links
		want    string
		arrived map[uint32]string // ArrivedOn per namespace
		bridged uint32            // a namespace where it must be Bridged, or 0
		sent    uint32            // a namespace that sent it, or 0
	}{
		{name: "routed and dropped",
			events: []event.Event{ev(event.NetDevQueue, nsA, "veth-a"), ev(event.NetifReceiveSkb, nsR, "veth-ra"),
				ev(event.FibTableLookup, 0, ""), ev(event.KfreeSkb, nsR, "veth-ra")},
			want:    "sent > received on veth-ra > dropped",
			arrived: map[uint32]string{nsR: "veth-ra", nsA: ""}, sent: nsA},
		{name: "routed through",
			events: []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-ra"), ev(event.NetDevQueue, nsR, "veth-rb"),
				ev(event.NetifReceiveSkb, nsB, "veth-b"), ev(event.ConsumeSkb, nsB, "")},
			want:    "received on veth-ra > routed from veth-ra to veth-rb > received on veth-b > consumed",
			arrived: map[uint32]string{nsR: "", nsB: "veth-b"}},
		{name: "bridged, known from the links", links: br,
			events: []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-r1"), ev(event.NetDevQueue, nsR, "veth-r2"),
				ev(event.NetifReceiveSkb, nsB, "veth-b")},
			want:    "received on veth-r1 > bridged by br0 from port veth-r1 to veth-r2 > received on veth-b",
			arrived: map[uint32]string{nsR: ""}, bridged: nsR},
		{name: "bridged and dropped on the port", links: br,
			events:  []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-r1"), ev(event.KfreeSkb, nsR, "veth-r1")},
			want:    "received on veth-r1 > bridged by br0 from port veth-r1 > dropped",
			arrived: map[uint32]string{nsR: ""}, bridged: nsR},
		{name: "bridged, known from a bridge-family observer",
			events: []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-r1"), obsBridge, ev(event.NetDevQueue, nsR, "veth-r2")},
			want:   "received on veth-r1 > bridged by a bridge from port veth-r1 to veth-r2", bridged: nsR},
		{name: "passed up by the bridge", links: br,
			events: []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-r1"), ev(event.NetifReceiveSkb, nsR, "br0"),
				ev(event.KfreeSkb, nsR, "br0")},
			want:    "received on veth-r1 > bridged by br0 from port veth-r1 to br0 > received on br0 > dropped",
			arrived: map[uint32]string{nsR: "br0"}},
		{name: "sender's own drop",
			events:  []event.Event{ev(event.FibTableLookup, 0, ""), ev(event.KfreeSkb, nsA, "veth-a")},
			want:    "dropped",
			arrived: map[uint32]string{nsA: ""}},
		{name: "netif_rx then netif_receive_skb is one reception",
			events: []event.Event{ev(event.NetifRx, nsB, "veth-b"), ev(event.NetifReceiveSkb, nsB, "veth-b"),
				{Probe: event.SkbCopyDatagramIovec, Netns: nsB, Skb: 0x10, Comm: "nc", PID: 9}},
			want:    "received on veth-b > delivered to nc (pid 9)",
			arrived: map[uint32]string{nsB: "veth-b"}},
		{name: "a veth's net_dev_xmit comes after the peer's receive",
			events: []event.Event{ev(event.NetDevQueue, nsA, "veth-a"), ev(event.NetifRx, nsB, "veth-b"), ev(event.NetDevXmit, nsA, "veth-a"),
				ev(event.NetifReceiveSkb, nsB, "veth-b"), ev(event.ConsumeSkb, nsB, "")},
			want:    "sent > received on veth-b > consumed",
			arrived: map[uint32]string{nsB: "veth-b"}, sent: nsA},
		{name: "nat",
			events: []event.Event{ev(event.NetifReceiveSkb, nsR, "veth-ra"), {Probe: event.NetDevQueue, Netns: nsR, Ifname: "veth-rb", Skb: 0x10, Packet: nat}},
			want:   "received on veth-ra > routed from veth-ra to veth-rb > nat"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := Build(&track.Story{Skb: 0x10, Events: c.events}, c.links)
			if got := p.String(); got != c.want {
				t.Errorf("path %q, want %q", got, c.want)
			}
			for ns, want := range c.arrived {
				if got := p.ArrivedOn(ns); got != want {
					t.Errorf("ArrivedOn(%d) = %q, want %q", ns, got, want)
				}
			}
			if c.bridged != 0 {
				if _, ok := p.Bridged(c.bridged); !ok {
					t.Errorf("not bridged in %d", c.bridged)
				}
			}
			if c.sent != 0 && !p.SentFrom(c.sent) {
				t.Errorf("not sent from %d", c.sent)
			}
		})
	}
}
