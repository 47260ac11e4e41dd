package diag

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/track"
)

var (
	ipA = netip.MustParseAddr("198.18.5.1")
	ipB = netip.MustParseAddr("198.18.5.2")
	ipC = netip.MustParseAddr("198.18.6.2")
)

const nsA, nsB uint32 = 4026532001, 4026532002

func pkt(proto uint8, src, dst netip.Addr, sport, dport uint16) event.Packet {
	return event.Packet{Source: event.FromHeaders, Family: 4, Proto: proto, Src: src, Dst: dst, Sport: sport, Dport: dport}
}

func ping(src, dst netip.Addr) event.Packet {
	p := pkt(1, src, dst, 0, 0)
	p.ICMPType, p.ICMPID, p.ICMPSeq = 8, 7, 1
	return p
}

type ev = event.Event

// at is an event of the tracepoint called name, or else an entry of the
// function called name.
func at(name string, ns uint32, dev string, p event.Packet) ev {
	id, ok := event.ProbeNamed(name)
	if !ok {
		id = event.FuncEntry
	}
	return ev{Probe: id, Name: name, Netns: ns, Ifname: dev, Packet: p, Skb: 0x10}
}

// with returns e with facts f.
func with(e ev, f event.Facts) ev {
	e.Facts = f
	return e
}

func drop(ns uint32, dev string, p event.Packet, reason, loc string) ev {
	e := at("kfree_skb", ns, dev, p)
	e.Reason, e.Location = reason, loc
	return e
}

type fakeHost struct {
	forwarding bool
	local      map[netip.Addr]bool
}

func (h fakeHost) Forwarding(uint32, uint8, string) (bool, bool) { return h.forwarding, true }
func (h fakeHost) RPFilter(uint32, string) (int, bool)           { return 0, false }
func (h fakeHost) IsLocal(_ uint32, a netip.Addr) (bool, bool)   { return h.local[a], true }

// codeRE is what a finding code looks like: "nf.rule_drop", "drop.TCP_CSUM".
var codeRE = regexp.MustCompile(`^[a-z_]+(\.[A-Za-z0-9_]+)*$`)

type fakeLinks map[string]string

func (l fakeLinks) Bridge(_ uint32, dev string) (string, bool) { b, ok := l[dev]; return b, ok }

func TestAnalyze(t *testing.T) {
	syn := pkt(6, ipA, ipB, 40000, 81)
	syn.TCPFlags = 2
	udp := pkt(17, ipA, ipB, 5000, 9)
	tests := []struct {
		name   string
		events []ev
		ctx    Context
		worst  Level
		want   []string // substrings that must appear in the findings (message or advice), in any order
		not    []string // substrings that must not appear in any WARN or ERROR finding
		notAny []string // substrings that must not appear in any finding at all
		levels []Level  // per event, when given
	}{
		{
			name: "delivered ping",
			events: []ev{
				at("net_dev_queue", nsA, "vA", ping(ipA, ipB)),
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipB)),
				at("consume_skb", nsB, "vB", ping(ipA, ipB)),
			},
			worst:  Info,
			levels: []Level{Info, Info, Info},
		},
		{
			name: "tcp to a closed port",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", syn),
				at("tcp_send_reset", nsB, "vB", syn),
				drop(nsB, "vB", syn, "NO_SOCKET", "tcp_v4_rcv+0x91"),
			},
			worst:  Error,
			levels: []Level{Info, Warn, Error},
			want:   []string{"nothing listens on tcp port 81 at 198.18.5.2", "ss -lntup", "TCP answers with a reset"},
		},
		{
			name: "udp to a closed port answered with port unreachable",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", udp),
				with(at("icmp_send", nsB, "vB", udp), event.Facts{ICMP: event.ICMPError{Type: 3, Code: 3}}),
				drop(nsB, "vB", udp, "NO_SOCKET", "__udp4_lib_rcv+0x9c"),
			},
			ctx:   Context{Counters: []Counter{{Netns: nsB, Name: "Udp NoPorts", Delta: 1, Meaning: "UDP datagrams to a port with no socket"}}},
			worst: Error,
			want:  []string{"ICMP port unreachable (type 3 code 3)", "nothing listens on udp port 9", "Udp NoPorts +1"},
		},
		{
			name: "nftables rule drop names table, chain and rule",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipB)),
				drop(nsB, "vB", ping(ipA, ipB), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Rules: []RuleHit{
				{Netns: nsB, Family: "inet", Table: "usr", Chain: "input", Handle: 3, Rule: "icmp type echo-request drop", Verdict: "drop", Packet: ping(ipA, ipB)},
			}},
			worst: Error,
			want:  []string{"dropped by rule `icmp type echo-request drop` (table inet usr, chain input, handle 3)", "nft delete rule inet usr input handle 3"},
		},
		{
			name: "iptables forward drop",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Rules: []RuleHit{
				{Netns: nsB, Family: "ip", Table: "filter", Chain: "FORWARD", Handle: 4, Rule: "counter drop", Verdict: "drop", Packet: ping(ipA, ipC)},
			}},
			worst: Error,
			want:  []string{"chain FORWARD", "iptables -t filter -S FORWARD"},
		},
		{
			name: "policy drop",
			events: []ev{
				drop(nsB, "vB", ping(ipA, ipB), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx:   Context{Rules: []RuleHit{{Netns: nsB, Family: "inet", Table: "usr", Chain: "input", Verdict: "drop", Policy: true, Packet: ping(ipA, ipB)}}},
			worst: Error,
			want:  []string{"policy of chain input", "add a rule that accepts it"},
		},
		{
			name: "no route",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				{Probe: event.FibTableLookup, Name: "fib_table_lookup", Netns: nsB, Packet: event.Packet{Source: event.FromFlow, Family: 4, Src: ipA, Dst: ipC},
					Facts: event.Facts{Route: event.Route{Table: 254, Err: -101}}, Ret: -101},
				drop(nsB, "vB", ping(ipA, ipC), "IP_NOROUTE", "ip_route_input_slow+0x2a"),
			},
			worst: Error,
			want:  []string{"route lookup for 198.18.6.2 in table 254 failed: no route (network unreachable)", "ip route add 198.18.6.2"},
		},
		{
			name: "forwarding disabled",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "IP_INADDRERRORS", "ip_error+0x1"),
			},
			ctx:   Context{Host: fakeHost{forwarding: false, local: map[netip.Addr]bool{ipB: true}}},
			worst: Error,
			want:  []string{"forwarding is disabled in netns", "sysctl -w net.ipv4.ip_forward=1"},
		},
		{
			name: "bridged and dropped by a bridge-family rule: no forwarding claim",
			events: []ev{
				at("netif_receive_skb", nsB, "port1", ping(ipA, ipC)),
				with(at("nf_observe", nsB, "port1", ping(ipA, ipC)), event.Facts{Hook: event.HookPoint{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -199}}),
				drop(nsB, "port2", ping(ipA, ipC), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Host: fakeHost{forwarding: false}, Links: fakeLinks{"port1": "br0"},
				Hooks: map[uint32]Hooks{nsB: {Points: []event.Point{{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -199}}}},
				Rules: []RuleHit{{Netns: nsB, Family: "bridge", Table: "f", Chain: "fwd", Handle: 2, Rule: "icmp type echo-request drop", Verdict: "drop", Packet: ping(ipA, ipC)}}},
			worst: Error,
			want:  []string{"table bridge f, chain fwd"},
			not:   []string{"forwarding", "ip_forward", "route"},
		},
		{
			name: "bridged through: said to be bridged, not forwarded",
			events: []ev{
				at("netif_receive_skb", nsB, "port1", ping(ipA, ipB)),
				at("net_dev_queue", nsB, "port2", ping(ipA, ipB)),
				at("consume_skb", nsB, "port2", ping(ipA, ipB)),
			},
			ctx:    Context{Links: fakeLinks{"port1": "br0", "port2": "br0"}},
			worst:  Info,
			want:   []string{"bridged in netns 4026532002 by br0 from port port1 to port2"},
			notAny: []string{"routed", "forwarded"},
		},
		{
			name: "bridged, an ip observer passed, no rule trace: no ip hook blamed",
			events: []ev{
				at("netif_receive_skb", nsB, "port1", ping(ipA, ipC)),
				with(at("nf_observe", nsB, "port1", ping(ipA, ipC)), event.Facts{Hook: event.HookPoint{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -199}}),
				drop(nsB, "port2", ping(ipA, ipC), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Links: fakeLinks{"port1": "br0"},
				Hooks: map[uint32]Hooks{nsB: {Points: []event.Point{{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -199}}}}},
			worst:  Error,
			notAny: []string{"ip prerouting"},
		},
		{
			name: "the sender's neighbour failure: no forwarding claim",
			events: []ev{
				at("fib_table_lookup", 0, "", ping(ipA, ipC)),
				drop(nsA, "vA", ping(ipA, ipC), "NEIGH_FAILED", "__neigh_event_send+0x1"),
			},
			ctx:   Context{Host: fakeHost{forwarding: false}},
			worst: Error,
			want:  []string{"neighbour resolution (ARP/ND) failed"},
			not:   []string{"forwarding", "ip_forward"},
		},
		{
			name: "received, not for us, dropped elsewhere than at routing: no forwarding claim",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx:   Context{Host: fakeHost{forwarding: false}},
			worst: Error,
			not:   []string{"forwarding is disabled"},
		},
		{
			name: "a prohibit policy rule is not a firewall",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				with(at("icmp_send", nsB, "vB", ping(ipA, ipC)), event.Facts{ICMP: event.ICMPError{Type: 3, Code: 13}}),
				drop(nsB, "vB", ping(ipA, ipC), "NOT_SPECIFIED", "ip_error+0x5b"),
			},
			worst: Error,
			want:  []string{"prohibit route or policy rule", "ip rule show"},
			not:   []string{"firewall rule", "reject rules", "nft -a list ruleset"},
		},
		{
			name: "an ip6tables drop says ip6tables",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipB)),
				drop(nsB, "vB", ping(ipA, ipB), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Rules: []RuleHit{
				{Netns: nsB, Family: "ip6", Table: "filter", Chain: "INPUT", Handle: 3, Verdict: "drop", Packet: ping(ipA, ipB)},
			}},
			worst: Error,
			want:  []string{"ip6tables -t filter -S INPUT"},
			not:   []string{"`iptables"},
		},
		{
			name: "a route lookup without a namespace is named by where the packet was",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				with(at("fib_table_lookup", 0, "", ping(ipA, ipC)), event.Facts{Route: event.Route{Table: 254, Err: -22}}),
				drop(nsB, "vB", ping(ipA, ipC), "NOT_SPECIFIED", "ip_error+0x5b"),
			},
			worst: Error,
			want:  []string{"blackhole", "in netns 4026532002"},
			not:   []string{"netns 0"},
		},
		{
			name: "forwarded and NATed",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", pkt(6, ipA, ipB, 40000, 80)),
				at("net_dev_queue", nsB, "vC", pkt(6, ipA, ipC, 40000, 8080)),
				at("consume_skb", nsB, "vC", pkt(6, ipA, ipC, 40000, 8080)),
			},
			worst: Info,
			want:  []string{"NAT (destination NAT)", "198.18.5.2:80", "198.18.6.2:8080", "routed (forwarded) in netns 4026532002 from vB to vC"},
		},
		{
			name: "NAT named at the netfilter hook",
			events: []ev{
				with(at("nf_observe", nsB, "vB", pkt(6, ipA, ipB, 40000, 80)), event.Facts{Hook: event.HookPoint{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -199}}),
				with(at("nf_observe", nsB, "vB", pkt(6, ipA, ipC, 40000, 8080)), event.Facts{Hook: event.HookPoint{Family: event.FamilyIPv4, Hook: event.HookPrerouting, Priority: -99}}),
			},
			worst: Info,
			want:  []string{"between netfilter ip prerouting (after priority -199) and netfilter ip prerouting (after priority -99)"},
		},
		{
			name: "receive buffer full",
			events: []ev{
				with(at("sock_rcvqueue_full", nsB, "vB", udp), event.Facts{Buf: event.SockBuf{Rcvbuf: 2304, Rmem: 4352}}),
				drop(nsB, "vB", udp, "SOCKET_RCVBUFF", "sock_queue_rcv_skb_reason+0x1"),
			},
			worst: Error,
			want:  []string{"socket receive buffer full (4352 bytes queued, limit 2304)", "SO_RCVBUF"},
		},
		{
			name:   "unknown reason still explained",
			events: []ev{drop(nsB, "vB", udp, "SOME_NEW_REASON", "f+0x1")},
			worst:  Error,
			want:   []string{"the kernel's reason is SOME_NEW_REASON", "dropreason-core.h"},
		},
		{
			name:   "prefix rule",
			events: []ev{drop(nsB, "vB", syn, "TCP_OFOMERGE", "f+0x1")},
			worst:  Error,
			want:   []string{"TCP state machine rejected"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &track.Story{Skb: 0x10, Events: tc.events, Ended: true}
			if d := tc.events[len(tc.events)-1]; d.Probe == event.KfreeSkb {
				s.Dropped = true
			}
			a := Analyze(s, tc.ctx)
			if a.Worst() != tc.worst {
				t.Errorf("worst = %v, want %v; findings %+v", a.Worst(), tc.worst, a.Findings)
			}
			var all strings.Builder
			for _, f := range a.Findings {
				all.WriteString(f.Message + "\n" + f.Advice + "\n" + strings.Join(f.Evidence, "\n") + "\n")
			}
			for _, w := range tc.want {
				if !strings.Contains(all.String(), w) {
					t.Errorf("findings lack %q:\n%s", w, all.String())
				}
			}
			for _, n := range tc.notAny {
				if strings.Contains(all.String(), n) {
					t.Errorf("a finding says %q, false here:\n%s", n, all.String())
				}
			}
			for _, f := range a.Findings {
				if !codeRE.MatchString(f.Code) || len(f.Evidence) == 0 {
					t.Errorf("finding %q: code %q, evidence %q: want a code and evidence", f.Message, f.Code, f.Evidence)
				}
				if f.Level == Info {
					continue
				}
				text := f.Message + "\n" + f.Advice
				for _, n := range tc.not {
					if strings.Contains(text, n) {
						t.Errorf("a %v finding says %q, which is false here:\n%s", f.Level, n, text)
					}
				}
			}
			if tc.levels != nil {
				for i, l := range tc.levels {
					if a.Levels[i] != l {
						t.Errorf("event %d (%s) level %v, want %v", i, tc.events[i].Probe, a.Levels[i], l)
					}
				}
			}
			for i := 1; i < len(a.Findings); i++ {
				if a.Findings[i].Level > a.Findings[i-1].Level {
					t.Errorf("findings not sorted by level: %v", a.Findings)
				}
			}
		})
	}
}

// TestNATNetns: a NAT finding is about the namespace where the packet was
// rewritten, also when the later event has none (consume_skb after local
// delivery, with tracepoints only: no device, so no namespace).
func TestNATNetns(t *testing.T) {
	s := &track.Story{Skb: 0x10, Ended: true, Events: []ev{
		at("netif_receive_skb", nsB, "vB", pkt(6, ipA, ipB, 40000, 80)),
		at("consume_skb", 0, "", pkt(6, ipA, ipB, 40000, 8080)),
	}}
	for _, f := range Analyze(s, Context{}).Findings {
		if strings.Contains(f.Message, "destination NAT") {
			if f.Netns != nsB {
				t.Errorf("NAT finding netns %d, want %d: %+v", f.Netns, nsB, f)
			}
			return
		}
	}
	t.Error("no destination NAT finding")
}

// TestEveryKernelReason: every drop reason the running kernel names gets a
// finding with a message and advice.
// noAdvice are drop reasons that get only the generic finding, on purpose:
// not drops of IP packets, or not drops at all.
var noAdvice = map[string]string{
	"NOT_DROPPED_YET":        "not a drop",
	"CONSUMED":               "not a drop",
	"UNIX_DISCONNECT":        "unix sockets",
	"UNIX_SKIP_OOB":          "unix sockets",
	"PACKET_SOCK_ERROR":      "packet sockets",
	"ARP_PVLAN_DISABLE":      "ARP proxy on private VLANs: no IP packet",
	"MAC_IEEE_MAC_CONTROL":   "802.3 MAC control frames: no IP packet",
	"CAN_RX_INVALID_FRAME":   "CAN bus",
	"CANFD_RX_INVALID_FRAME": "CAN bus",
	"CANXL_RX_INVALID_FRAME": "CAN bus",
}

// olderReasons are reasons the rules explain that newer kernels renamed
// or removed; a row for a reason no kernel has is stale.
var olderReasons = map[string]string{
	"IP_NOROUTE":    "up to 6.12; 6.13+ say IP_INNOROUTES / IP_OUTNOROUTES",
	"NEIGH_NOENTRY": "up to 6.16",
}

// TestEveryKernelReason: every drop reason of the running kernel has a
// row of its own or of its family (a prefix row), unless noAdvice says why
// not; and every row names a reason of this kernel or of an older one.
func TestEveryKernelReason(t *testing.T) {
	spec, err := kernel.BTF()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	reasons, err := kernel.LoadReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	all := reasons.All()
	if len(all) == 0 {
		if os.Getenv("CI") == "true" && kernel.RunningVersion().AtLeast(5, 17) {
			t.Fatal("the kernel's BTF names no drop reasons (enum skb_drop_reason, 5.17+)")
		}
		t.Skip("this kernel names no drop reasons")
	}
	specific := 0
	for _, r := range all {
		e := drop(nsB, "vB", ping(ipA, ipB), r.Name, "f+0x1")
		f := dropFinding(e, Context{})
		if f.Level != Error || f.Message == "" || f.Advice == "" || f.Reason != r.Name {
			t.Errorf("reason %s: finding %+v", r.Name, f)
		}
		_, ok := lookupDrop(r.Name)
		_, excused := noAdvice[r.Name]
		switch {
		case ok && excused:
			t.Errorf("reason %s has a row and is listed in noAdvice: drop one", r.Name)
		case !ok && !excused:
			t.Errorf("reason %s of this kernel has no row in dropRules (add one, or list it in noAdvice with why)", r.Name)
		case ok:
			specific++
		}
	}
	t.Logf("%d of %d kernel drop reasons have specific advice", specific, len(all))
	for _, r := range dropRules {
		if strings.HasSuffix(r.Reason, "*") {
			continue
		}
		if reasons.Name(code(all, r.Reason)) == r.Reason {
			continue
		}
		if _, old := olderReasons[r.Reason]; !old {
			t.Errorf("rule for %s: not a drop reason of this kernel, nor listed in olderReasons", r.Reason)
		}
	}
	for name := range olderReasons {
		if reasons.Name(code(all, name)) == name {
			t.Logf("%s is listed in olderReasons but this kernel has it", name)
		}
	}
}

func code(all []kernel.Reason, name string) uint32 {
	for _, r := range all {
		if r.Name == name {
			return r.Code
		}
	}
	return 1 << 31
}

// TestEnterAdvice: with Context.Enter, a finding's advice ends with how to
// run its commands in the finding's namespace; a namespace Enter has
// nothing for (the current one) is left alone.
func TestEnterAdvice(t *testing.T) {
	ctx := Context{
		Netns: func(ino uint32) string { return fmt.Sprintf("%d (pod default/web)", ino) },
		Enter: func(ino uint32) string {
			if ino == nsB {
				return "`nsenter -t 12 -n CMD`"
			}
			return ""
		},
	}
	for _, tc := range []struct {
		ns   uint32
		want string
	}{
		{nsB, fmt.Sprintf("; run them in netns %d (pod default/web) with `nsenter -t 12 -n CMD`", nsB)},
		{nsA, "a client may be using the wrong port or address"},
	} {
		s := &track.Story{Skb: 0x10, Dropped: true, Events: []ev{
			drop(tc.ns, "vB", pkt(17, ipA, ipB, 40000, 53), "NO_SOCKET", "__udp4_lib_rcv+0x1"),
		}}
		var advice string
		for _, f := range Analyze(s, ctx).Findings {
			if f.Level == Error {
				advice = f.Advice
			}
		}
		if !strings.HasSuffix(advice, tc.want) {
			t.Errorf("netns %d: advice %q, want it to end with %q", tc.ns, advice, tc.want)
		}
	}
}
