package filter

import (
	"net/netip"

	"github.com/skbtrail/skbtrail/internal/event"
)

// Match reports whether a packet matches f's header filter (addresses,
// ports, protocol) as the probes decide it in the kernel (match_pkt in
// bpf/packet.h; a test runs both on the same cases). A route lookup's flow
// (p.Source == event.FromFlow) matches loosely: its zero fields are not
// known yet and match anything. The namespace and device are At's.
func (f Filter) Match(p event.Packet) bool {
	loose := p.Source == event.FromFlow
	if f.Proto != 0 && p.Proto != f.Proto && !(loose && p.Proto == 0) {
		return false
	}
	if !matchAddr(f.Saddr, p.Family, p.Src, loose) || !matchAddr(f.Daddr, p.Family, p.Dst, loose) {
		return false
	}
	if f.Addr.IsValid() && !matchAddr(f.Addr, p.Family, p.Src, false) && !matchAddr(f.Addr, p.Family, p.Dst, false) {
		return false
	}
	if f.Sport != 0 && p.Sport != f.Sport && !(loose && p.Sport == 0) {
		return false
	}
	if f.Dport != 0 && p.Dport != f.Dport && !(loose && p.Dport == 0) {
		return false
	}
	if f.Port != 0 && p.Sport != f.Port && p.Dport != f.Port && !(loose && p.Sport == 0 && p.Dport == 0) {
		return false
	}
	return true
}

// At reports whether a packet in network namespace netns on device dev
// passes f's --netns and --dev.
func (f Filter) At(netns uint32, dev string) bool {
	return (f.Netns == 0 || netns == f.Netns) && (f.Dev == "" || dev == f.Dev)
}

// matchAddr: an invalid prefix matches anything; else the packet must be of
// the prefix's family and its address in the prefix. Loosely, an unknown
// (zero) address matches.
func matchAddr(pf netip.Prefix, family uint8, a netip.Addr, loose bool) bool {
	if !pf.IsValid() {
		return true
	}
	want := uint8(6)
	if pf.Addr().Is4() {
		want = 4
	}
	if family != want {
		return false
	}
	if !a.IsValid() { // the probe's zero bytes
		a = netip.IPv6Unspecified()
		if want == 4 {
			a = netip.IPv4Unspecified()
		}
	}
	if loose && a.IsUnspecified() {
		return true
	}
	return pf.Contains(a)
}
