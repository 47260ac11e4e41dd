package diag

import (
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/track"
)

// Advice that puts a hostile table, chain or interface name in a command
// quotes it: the command is still one command.
func TestAdviceQuotesNames(t *testing.T) {
	for _, c := range []struct {
		name   string
		events []ev
		ctx    Context
		want   string
		not    string
	}{
		{
			name: "nft table and chain",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipB)),
				drop(nsB, "vB", ping(ipA, ipB), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Rules: []RuleHit{{Netns: nsB, Family: "inet", Table: "t;reboot", Chain: "$(id)", Handle: 3,
				Rule: "drop", Verdict: "drop", Packet: ping(ipA, ipB)}}},
			want: `nft delete rule inet '"t;reboot"' '"$(id)"' handle 3`,
			not:  "inet t;reboot",
		},
		{
			name: "iptables chain",
			events: []ev{
				at("netif_receive_skb", nsB, "vB", ping(ipA, ipC)),
				drop(nsB, "vB", ping(ipA, ipC), "NETFILTER_DROP", "nft_do_chain+0x3e8"),
			},
			ctx: Context{Rules: []RuleHit{{Netns: nsB, Family: "ip", Table: "filter", Chain: "FWD`ID`", Handle: 4,
				Rule: "counter drop", Verdict: "drop", Packet: ping(ipA, ipC)}}},
			want: "iptables -t filter -S 'FWD`ID`'",
		},
		{
			name:   "interface",
			events: []ev{drop(nsB, "x;reboot", ping(ipA, ipB), "DEV_READY", "f+0x1")},
			want:   "`ip link set 'x;reboot' up`",
			not:    "set x;reboot",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &track.Story{Skb: 0x10, Events: c.events, Ended: true, Dropped: true}
			a := Analyze(s, c.ctx)
			var all strings.Builder // the advice: where commands are
			for _, f := range a.Findings {
				all.WriteString(f.Advice + "\n")
			}
			if !strings.Contains(all.String(), c.want) {
				t.Errorf("advice lacks %s:\n%s", c.want, all.String())
			}
			if c.not != "" && strings.Contains(all.String(), c.not) {
				t.Errorf("advice has the name unquoted (%s):\n%s", c.not, all.String())
			}
		})
	}
}
