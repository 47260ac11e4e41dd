// Package path turns a packet's story into its path through the stack:
// where it started (sent by a local socket, or received on a device in a
// namespace) and each step after (bridged, routed, delivered, NAT-ed,
// queued, dropped, consumed). The diagnosis rules read the path before
// they speak, so that none of them can speak of routing for a bridged
// packet, or of forwarding for a packet its own host sent.
//
// The path is built from the story's events only, plus what an optional
// Links answers about devices (is it a bridge port); it imports no loader.
package path

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Kind is what happened to the packet at a step.
type Kind int

// The kinds of step.
const (
	Sent      Kind = iota + 1 // built and sent by this namespace (a local socket or the kernel)
	Received                  // received on a device
	Bridged                   // switched by a bridge from a port to another (or to the bridge itself)
	Routed                    // routed (forwarded) from a device to another in the same namespace
	Delivered                 // handed to a local socket
	NAT                       // its addresses or ports were rewritten
	Queued                    // queued on a qdisc
	Dropped                   // freed as a drop
	Consumed                  // freed after normal use
)

func (k Kind) String() string {
	switch k {
	case Sent:
		return "sent"
	case Received:
		return "received"
	case Bridged:
		return "bridged"
	case Routed:
		return "routed"
	case Delivered:
		return "delivered"
	case NAT:
		return "nat"
	case Queued:
		return "queued"
	case Dropped:
		return "dropped"
	case Consumed:
		return "consumed"
	}
	return fmt.Sprintf("kind%d", int(k))
}

// Step is one step of the path.
type Step struct {
	Kind   Kind
	Netns  uint32
	Event  int    // index in the story of the event that shows it
	Dev    string // the device received on (Received, Bridged, Routed) or sent from (Sent)
	OutDev string // the device it left by (Bridged, Routed)
	Bridge string // the bridge (Bridged), where known
	Comm   string // the process (Sent, Delivered)
	PID    uint32
}

func (s Step) String() string {
	switch s.Kind {
	case Sent:
		if s.Comm != "" {
			return fmt.Sprintf("sent by %s (pid %d)", s.Comm, s.PID)
		}
		return "sent"
	case Received:
		return "received on " + s.Dev
	case Bridged:
		b := s.Bridge
		if b == "" {
			b = "a bridge"
		}
		if s.OutDev == "" {
			return fmt.Sprintf("bridged by %s from port %s", b, s.Dev)
		}
		return fmt.Sprintf("bridged by %s from port %s to %s", b, s.Dev, s.OutDev)
	case Routed:
		return fmt.Sprintf("routed from %s to %s", s.Dev, s.OutDev)
	case Delivered:
		return fmt.Sprintf("delivered to %s (pid %d)", s.Comm, s.PID)
	}
	return s.Kind.String()
}

// Path is a packet's path: its steps in order. The first is the origin
// (Sent or Received), unless the probes saw the packet only later.
type Path struct {
	Steps []Step
}

// Links answers what the events cannot tell about devices.
type Links interface {
	// Bridge returns the bridge a device is a port of, ok false when it
	// is none (or it cannot tell).
	Bridge(netns uint32, ifname string) (bridge string, ok bool)
}

// receive reports whether the probe sees a packet arriving on a device.
func receive(p event.Probe) bool {
	return p == event.NetifReceiveSkb || p == event.NetifRx || p == event.NapiGroReceiveEntry
}

// transmit reports whether the probe sees a packet leaving by a device.
func transmit(p event.Probe) bool {
	return p == event.NetDevQueue || p == event.NetDevStartXmit || p == event.NetDevXmit
}

// Build makes the path of a story. links may be nil.
func Build(s *track.Story, links Links) Path {
	var p Path
	// at is the packet's place in the current namespace: the index of
	// its Received step, or -1 once it left or was sent from here.
	at, atNS, sentNS := -1, uint32(0), uint32(0)
	curNS := uint32(0)
	var last event.Event
	haveLast := false
	bridgeOf := func(ns uint32, dev string) (string, bool) {
		if links == nil || dev == "" {
			return "", false
		}
		return links.Bridge(ns, dev)
	}
	add := func(st Step) int {
		p.Steps = append(p.Steps, st)
		return len(p.Steps) - 1
	}
	for i, e := range s.Events {
		ns := e.Netns
		if ns == 0 {
			ns = curNS
		}
		switch {
		case receive(e.Probe) && e.Ifname != "":
			// The same packet seen again on the same device (netif_rx,
			// then netif_receive_skb) is one reception.
			if at >= 0 && atNS == ns && p.Steps[at].Dev == e.Ifname {
				break
			}
			// Received on a bridge after a port of it in the same
			// namespace: the bridge passed it up to this host.
			if at >= 0 && atNS == ns {
				if b, ok := bridgeOf(ns, p.Steps[at].Dev); ok && b == e.Ifname {
					if k := len(p.Steps) - 1; p.Steps[k].Kind == Bridged && p.Steps[k].OutDev == "" {
						p.Steps[k].OutDev = e.Ifname
					}
				}
			}
			at, atNS = add(Step{Kind: Received, Netns: ns, Event: i, Dev: e.Ifname}), ns
			// A frame received on a bridge port is the bridge's: it
			// switches it (or passes it up on the bridge device).
			if b, ok := bridgeOf(ns, e.Ifname); ok {
				add(Step{Kind: Bridged, Netns: ns, Event: i, Dev: e.Ifname, Bridge: b})
			}
		case e.Probe == event.NetDevXmit && len(p.Steps) > 0:
			// The driver's return: on a veth it comes after the peer
			// received the packet, so it is no step of its own.
		case transmit(e.Probe) && e.Ifname != "":
			if at >= 0 && atNS == ns && p.Steps[at].Dev != e.Ifname {
				in := p.Steps[at].Dev
				bIn, inPort := bridgeOf(ns, in)
				bOut, outPort := bridgeOf(ns, e.Ifname)
				if (inPort && outPort && bIn == bOut) || bridgedSince(s, p.Steps[at].Event, i, ns) {
					b := bIn
					if !inPort {
						b = bOut
					}
					if k := len(p.Steps) - 1; p.Steps[k].Kind == Bridged && p.Steps[k].Netns == ns && p.Steps[k].Dev == in && p.Steps[k].OutDev == "" {
						p.Steps[k].OutDev, p.Steps[k].Event = e.Ifname, i
					} else {
						add(Step{Kind: Bridged, Netns: ns, Event: i, Dev: in, OutDev: e.Ifname, Bridge: b})
					}
				} else {
					add(Step{Kind: Routed, Netns: ns, Event: i, Dev: in, OutDev: e.Ifname})
				}
				at, sentNS = -1, ns // it left; what it does next is not a new origin
				break
			}
			if (at < 0 || atNS != ns) && sentNS != ns {
				add(Step{Kind: Sent, Netns: ns, Event: i, Dev: e.Ifname, Comm: e.Comm, PID: e.PID})
				at, sentNS = -1, ns
			}
		case e.Probe == event.QdiscEnqueue:
			add(Step{Kind: Queued, Netns: ns, Event: i, Dev: e.Ifname})
		case e.Probe == event.SkbCopyDatagramIovec:
			add(Step{Kind: Delivered, Netns: ns, Event: i, Comm: e.Comm, PID: e.PID})
		case e.Probe == event.KfreeSkb && (e.Skb == s.Skb || s.Skb == 0):
			add(Step{Kind: Dropped, Netns: ns, Event: i, Dev: e.Ifname})
		case e.Probe == event.ConsumeSkb && (e.Skb == s.Skb || s.Skb == 0):
			add(Step{Kind: Consumed, Netns: ns, Event: i, Dev: e.Ifname})
		}
		if e.Packet.Source == event.FromHeaders {
			if haveLast && last.Packet.Proto == e.Packet.Proto &&
				(last.Packet.Src != e.Packet.Src || last.Packet.Dst != e.Packet.Dst ||
					last.Packet.Sport != e.Packet.Sport || last.Packet.Dport != e.Packet.Dport) {
				add(Step{Kind: NAT, Netns: ns, Event: i})
			}
			last, haveLast = e, true
		}
		if ns != 0 {
			curNS = ns
		}
	}
	return p
}

// bridgedSince reports whether the events between from and to in namespace
// ns show bridging: a bridge-family netfilter observer.
func bridgedSince(s *track.Story, from, to int, ns uint32) bool {
	for _, e := range s.Events[from:to] {
		if e.Probe == event.NFObserve && e.Netns == ns && e.Facts.Hook.Family == event.FamilyBridge {
			return true
		}
	}
	return false
}

// End returns the path's last Dropped or Consumed step.
func (p Path) End() (Step, bool) {
	for i := len(p.Steps) - 1; i >= 0; i-- {
		if k := p.Steps[i].Kind; k == Dropped || k == Consumed {
			return p.Steps[i], true
		}
	}
	return Step{}, false
}

func (p Path) index(k Kind) int {
	for i := len(p.Steps) - 1; i >= 0; i-- {
		if p.Steps[i].Kind == k {
			return i
		}
	}
	return -1
}

// ArrivedOn returns the device the packet was received on in namespace ns
// before its end (drop or free), when it was received there from a device
// and neither sent from that namespace nor bridged there since. It is
// "" for a packet this namespace sent itself, one that was bridged, or
// one the probes did not see arrive.
func (p Path) ArrivedOn(ns uint32) string {
	end := p.index(Dropped)
	if end < 0 {
		end = p.index(Consumed)
	}
	if end < 0 {
		end = len(p.Steps)
	}
	for i := end - 1; i >= 0; i-- {
		st := p.Steps[i]
		if st.Netns != ns {
			return ""
		}
		switch st.Kind {
		case Bridged, Sent, Routed:
			return ""
		case Received:
			return st.Dev
		}
	}
	return ""
}

// Bridged reports whether the packet was bridged in namespace ns, and the
// step that shows it.
func (p Path) Bridged(ns uint32) (Step, bool) {
	for _, st := range p.Steps {
		if st.Kind == Bridged && st.Netns == ns {
			return st, true
		}
	}
	return Step{}, false
}

// SentFrom reports whether namespace ns sent the packet itself (it was not
// received there first).
func (p Path) SentFrom(ns uint32) bool {
	for _, st := range p.Steps {
		if st.Netns != ns {
			continue
		}
		return st.Kind == Sent
	}
	return false
}

// Describe renders the path in one line, naming each namespace it enters
// with ns: "sent in netns 4026532001 (a) > received on veth-ra in netns
// 4026532002 (r) > dropped".
func (p Path) Describe(ns func(uint32) string) string {
	var parts []string
	cur := uint32(0)
	for _, st := range p.Steps {
		s := st.String()
		if st.Netns != 0 && st.Netns != cur {
			s += " in netns " + ns(st.Netns)
			cur = st.Netns
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " > ")
}

// String renders the path in one line: "sent by ping (pid 7) in 4026532281
// > routed from veth-ra to veth-rb in ... > dropped".
func (p Path) String() string {
	var parts []string
	for _, st := range p.Steps {
		parts = append(parts, st.String())
	}
	return strings.Join(parts, " > ")
}
