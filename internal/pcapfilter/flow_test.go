package pcapfilter

import (
	"net/netip"
	"testing"
)

func TestMatchFlow(t *testing.T) {
	ip := netip.MustParseAddr
	udp4 := func(dport uint16) Flow {
		return Flow{Family: 4, Proto: 17, Src: ip("198.18.0.1"), Dst: ip("198.18.0.2"), Sport: 40000, Dport: dport}
	}
	tcp6 := Flow{Family: 6, Proto: 6, Src: ip("fd00:1::1"), Dst: ip("fd00:1::2"), Sport: 40000, Dport: 80}
	icmp4 := Flow{Family: 4, Proto: 1, Src: ip("198.18.0.1"), Dst: ip("198.18.0.2")}
	noSrc := Flow{Family: 4, Proto: 6, Dst: ip("198.18.0.2"), Dport: 443}
	for _, c := range []struct {
		expr string
		flow Flow
		want bool
	}{
		{"udp and dst portrange 5002-5004", udp4(5000), false},
		{"udp and dst portrange 5002-5004", udp4(5003), true},
		{"icmp and ip[8] < 10", udp4(1025), false},
		{"ip[8] < 10", udp4(1025), false}, // no TTL in a flow
		{"not ip[8] < 10", udp4(1025), false},
		{"greater 10", udp4(1025), false}, // no length either
		{"", udp4(1), true},
		{"udp", udp4(1), true},
		{"tcp", udp4(1), false},
		{"udp port 53", udp4(53), true},
		{"port 53 or port 54", udp4(54), true},
		{"src port 40000 and dst port 53", udp4(53), true},
		{"host 198.18.0.2", udp4(53), true},
		{"src host 198.18.0.2", udp4(53), false},
		{"net 198.18.0.0/15 and not net 10.0.0.0/8", udp4(53), true},
		{"ip6", udp4(53), false},
		{"ip6 and tcp port 80", tcp6, true},
		{"tcp and dst port 80 and src net fd00::/8", tcp6, true},
		{"host fd00:1::3", tcp6, false},
		{"ip6 proto 6", tcp6, true},
		{"icmp", icmp4, true},
		{"icmp[icmptype] = icmp-echo", icmp4, false}, // no ICMP type in a flow
		{"icmp or udp", icmp4, true},
		{"host 198.18.0.2 and tcp port 443", noSrc, true}, // no source yet: 0.0.0.0
		{"src host 0.0.0.0", noSrc, true},
		{"tcp", Flow{}, false},
	} {
		prog, err := Compile(c.expr)
		if err != nil {
			t.Fatalf("%q: %v", c.expr, err)
		}
		if got := MatchFlow(prog, c.flow); got != c.want {
			t.Errorf("%q on %+v: %v, want %v", c.expr, c.flow, got, c.want)
		}
	}
}

// TestMatchFlowAsPacket: on expressions that read only what a flow has,
// a flow matches as a packet with those fields does (with libpcap's
// program too).
func TestMatchFlowAsPacket(t *testing.T) {
	flows := []struct {
		f   Flow
		pkt []byte
	}{
		{Flow{Family: 4, Proto: 6, Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Sport: 40000, Dport: 80},
			v4(6, "198.18.0.1", "198.18.0.2", 64, 0, nil, tcpH(40000, 80, tS, 0, ""))},
		{Flow{Family: 4, Proto: 17, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Sport: 5353, Dport: 53},
			v4(17, "10.0.0.1", "198.18.0.2", 64, 0, nil, udpH(5353, 53, nil))},
		{Flow{Family: 6, Proto: 17, Src: netip.MustParseAddr("fd00:1::1"), Dst: netip.MustParseAddr("ff02::16"), Sport: 7005, Dport: 5004},
			v6(17, "fd00:1::1", "ff02::16", udpH(7005, 5004, nil))},
		{Flow{Family: 6, Proto: 58, Src: netip.MustParseAddr("fe80::1"), Dst: netip.MustParseAddr("fd00:1::2")},
			v6(58, "fe80::1", "fd00:1::2", icmpH(128, 0))},
	}
	exprs := []string{"ip", "ip6", "tcp", "udp", "icmp6", "sctp", "port 80", "port 53 or 5004", "portrange 5000-6000",
		"host 198.18.0.2", "src net 10.0.0.0/8", "net fd00::/8", "ip6 multicast", "ip multicast", "tcp dst port 80",
		"udp and not port 53", "proto 17", "ip6 proto 58", "tcp[0:2] = 40000", "udp[2:2] > 1000", "ip[9] = 6", "ip6[6] = 17",
		"ip[12:4] & 0xff000000 = 0x0a000000", "host fd00:1::1 or host 198.18.0.1", "not tcp and not udp"}
	for _, expr := range exprs {
		ours, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := libpcap(t, expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range flows {
			want := Run(ours, fl.pkt, uint32(len(fl.pkt))) != 0
			if got := MatchFlow(ours, fl.f); got != want {
				t.Errorf("%q on %+v: flow %v, packet %v", expr, fl.f, got, want)
			}
			if got := MatchFlow(theirs, fl.f); got != want {
				t.Errorf("%q (libpcap's) on %+v: flow %v, packet %v", expr, fl.f, got, want)
			}
		}
	}
}
