package diag

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

type fakeLive struct {
	route     RouteCheck
	listeners []Listener
	tc        []TCFilter
	sysctl    map[string]int
	mtu       int
	neigh     string
}

func (l fakeLive) Route(uint32, netip.Addr, netip.Addr, string) (RouteCheck, bool) {
	return l.route, l.route.Type != ""
}
func (l fakeLive) Listeners(uint8, uint8, uint16) ([]Listener, bool) { return l.listeners, true }
func (l fakeLive) TCFilters(uint32, string, bool) ([]TCFilter, bool) { return l.tc, true }
func (l fakeLive) Sysctl(_ uint32, k string) (int, bool)             { v, ok := l.sysctl[k]; return v, ok }
func (l fakeLive) MTU(uint32, string) (int, bool)                    { return l.mtu, l.mtu != 0 }
func (l fakeLive) Neigh(uint32, string, netip.Addr) (string, bool)   { return l.neigh, l.neigh != "" }

func TestLiveChecks(t *testing.T) {
	syn := pkt(6, ipA, ipB, 40000, 80)
	syn.TCPFlags = 2
	echoB := ping(ipA, ipB)
	echo6 := event.Packet{Source: event.FromHeaders, Family: 6, Proto: 58, ICMPType: 128,
		Src: netip.MustParseAddr("fd00:5::1"), Dst: netip.MustParseAddr("fd00:5::2")}
	for _, c := range []struct {
		name   string
		events []ev
		live   fakeLive
		code   string   // a finding with this code must be there
		want   []string // in its message, advice or evidence
		not    []string // in no WARN/ERROR finding's message or advice
	}{
		{name: "prohibit policy rule",
			events: []ev{at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				with(at("icmp_send", nsB, "vB", ping(ipA, ipC)), event.Facts{ICMP: event.ICMPError{Type: 3, Code: 13}}),
				drop(nsB, "vB", ping(ipA, ipC), "NOT_SPECIFIED", "ip_error+0x5b")},
			live: fakeLive{route: RouteCheck{Type: "prohibit", Errno: "permission denied", Rule: "32765: from all to 198.18.6.2 prohibit"}},
			code: "route.rule_prohibit",
			want: []string{"32765: from all to 198.18.6.2 prohibit", "ip rule del pref 32765", "ip route get 198.18.6.2 from 198.18.5.1 iif vB"},
			not:  []string{"firewall rule", "reject rules"}},
		{name: "blackhole route in a table",
			events: []ev{at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "NOT_SPECIFIED", "ip_error+0x94")},
			live: fakeLive{route: RouteCheck{Type: "blackhole", Errno: "invalid argument", Table: 254, Prefix: "198.18.6.2/32"}},
			code: "route.blackhole",
			want: []string{"blackhole route (198.18.6.2/32, table 254)", "ip route del blackhole 198.18.6.2/32 table 254"}},
		{name: "unconfirmed unreachable is not claimed",
			events: []ev{at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "IP_INADDRERRORS", "ip_error+0x94")},
			live: fakeLive{route: RouteCheck{Type: "unreachable", Errno: "no route to host"}},
			not:  []string{"unreachable route"}},
		{name: "neighbour failure names the next hop",
			events: []ev{drop(nsA, "vA", ping(ipA, ipC), "NEIGH_FAILED", "neigh_invalidate+0x7e")},
			live:   fakeLive{route: RouteCheck{Type: "unicast", Dev: "vA", Via: ipB}, neigh: "FAILED"},
			code:   "neigh.failed",
			want:   []string{"the next hop 198.18.5.2 on vA (its entry is FAILED now)", "ip neigh show 198.18.5.2 dev vA"}},
		{name: "bound elsewhere",
			events: []ev{at("netif_receive_skb", nsB, "vB", syn), drop(nsB, "vB", syn, "NO_SOCKET", "tcp_v4_rcv+0x91")},
			live:   fakeLive{listeners: []Listener{{Netns: nsB, Proto: 6, Addr: netip.MustParseAddrPort("127.0.0.1:80")}}},
			code:   "socket.bound_elsewhere",
			want:   []string{"but a socket listens on port 80 at 127.0.0.1:80 in netns 4026532002", "sock_diag"}},
		{name: "no socket anywhere",
			events: []ev{at("netif_receive_skb", nsB, "vB", syn), drop(nsB, "vB", syn, "NO_SOCKET", "tcp_v4_rcv+0x91")},
			code:   "socket.none",
			want:   []string{"no tcp socket on port 80 in any namespace"}},
		{name: "tc BPF program",
			events: []ev{at("netif_receive_skb", nsB, "vB", echoB), drop(nsB, "vB", echoB, "TC_INGRESS", "tcf_classify+0x1")},
			live:   fakeLive{tc: []TCFilter{{Kind: "bpf", Pref: 49152, Name: "sbt_shot", ID: 42, Tag: "a04f5eef06a7f555", DirectAction: true}}},
			code:   "tc.drop",
			want:   []string{"sbt_shot (id 42, tag a04f5eef06a7f555)", "bpftool prog show id 42"}},
		{name: "echo ignored",
			events: []ev{at("netif_receive_skb", nsB, "vB", echoB), at("consume_skb", nsB, "vB", echoB)},
			live:   fakeLive{sysctl: map[string]int{"net/ipv4/icmp_echo_ignore_all": 1}},
			code:   "icmp.echo_ignored",
			want:   []string{"consumed in netns 4026532002 and no reply is sent", "icmp_echo_ignore_all=1"}},
		{name: "ipv6 echo ignored: icmpv6_rcv frees it",
			events: []ev{at("netif_receive_skb", nsB, "vB", echo6), drop(nsB, "vB", echo6, "NOT_SPECIFIED", "icmpv6_rcv+0x279")},
			live:   fakeLive{sysctl: map[string]int{"net/ipv6/icmp/echo_ignore_all": 1}},
			code:   "icmp.echo_ignored",
			want:   []string{"no reply is sent", "net.ipv6.icmp.echo_ignore_all=1"}},
		{name: "ipv6 echo freed by icmpv6_rcv, not ignored: no consumed claim",
			events: []ev{at("netif_receive_skb", nsB, "vB", echo6), drop(nsB, "vB", echo6, "NOT_SPECIFIED", "icmpv6_rcv+0x279")},
			live:   fakeLive{sysctl: map[string]int{"net/ipv6/icmp/echo_ignore_all": 0}},
			code:   "drop.NOT_SPECIFIED",
			not:    []string{"consumed", "no reply is sent"}},
		{name: "echo consumed, nothing explains it",
			events: []ev{at("netif_receive_skb", nsB, "vB", echoB), at("consume_skb", nsB, "vB", echoB)},
			live:   fakeLive{sysctl: map[string]int{"net/ipv4/icmp_echo_ignore_all": 0}},
			code:   "path.consumed",
			want:   []string{"cannot tell whether a reply was sent"},
			not:    []string{"no reply is sent"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &track.Story{Skb: 0x10, Events: c.events, Ended: true}
			a := Analyze(s, Context{Live: c.live})
			var all strings.Builder
			found := c.code == ""
			for _, f := range a.Findings {
				text := f.Message + "\n" + f.Advice + "\n" + strings.Join(f.Evidence, "\n")
				all.WriteString(f.Level.String() + " " + f.Code + ": " + text + "\n")
				if f.Code == c.code {
					found = true
					for _, w := range c.want {
						if !strings.Contains(text, w) {
							t.Errorf("finding %s lacks %q:\n%s", f.Code, w, text)
						}
					}
				}
				if f.Level > Info {
					for _, n := range c.not {
						if strings.Contains(f.Message+f.Advice, n) {
							t.Errorf("a %v finding says %q, false here:\n%s", f.Level, n, text)
						}
					}
				}
			}
			if !found {
				t.Errorf("no finding %s:\n%s", c.code, all.String())
			}
		})
	}
}
