package counters

import (
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	tests := []struct {
		name string
		want string // a part of the explanation; "" for none
	}{
		{"Udp NoPorts", "no socket"},
		{"Udp6 NoPorts", "no socket"},
		{"Udp RcvbufErrors", "receive buffer full"},
		{"IpExt InNoRoutes", "no route"},
		{"Ip6 InNoRoutes", "no route"},
		{"Ip InAddrErrors", "forwarding off"},
		{"Ip ForwDatagrams", "forwarding"},
		{"TcpExt TCPBacklogDrop", "backlog"},
		{"TcpExt IPReversePathFilter", "rp_filter"},
		{"TcpExt TCPDeferAcceptDrop", "dropped"}, // by the catch-all
		{"TcpExt LockDroppedIcmps", "dropped"},
		{"Icmp InCsumErrors", "checksum"},
		{"Icmp6 OutDestUnreachs", "unreachable"},
		{"dev vB rx_dropped", "on receive"},
		{"dev vB tx_dropped", "on transmit"},
		{"dev vB rx_frame_errors", "device errors"},
		{"softnet dropped", "netdev_max_backlog"},
		{"conntrack drop", "nf_conntrack_max"},
		{"arp unresolved_discards", "ARP/ND"},
		{"Tcp InSegs", ""},
		{"Udp InDatagrams", ""},
		{"dev vB rx_packets", ""},
		{"IcmpMsg OutType3", ""}, // Icmp OutDestUnreachs says it
		{"Tcp CurrEstab", ""},
		{"softnet processed", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := Explain(tt.name)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("Explain(%q) = %q, want it to contain %q", tt.name, got, tt.want)
		}
	}
}

// TestRules checks the table itself: valid patterns, an explanation for each,
// and no rule that no counter of this machine's captured files would ever
// reach (a misspelt name, or a rule hidden behind an earlier one).
func TestRules(t *testing.T) {
	snap, err := readDir(filepath.Join("testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	reached := map[string]bool{}
	for name := range snap {
		for _, r := range rules {
			if ok, _ := path.Match(r.pattern, name); ok {
				reached[r.pattern] = true
				break
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if _, err := path.Match(r.pattern, ""); err != nil {
			t.Errorf("pattern %q: %v", r.pattern, err)
		}
		if seen[r.pattern] {
			t.Errorf("pattern %q appears twice", r.pattern)
		}
		seen[r.pattern] = true
		if r.explanation == "" {
			t.Errorf("pattern %q has no explanation", r.pattern)
		}
		if !reached[r.pattern] {
			t.Errorf("pattern %q is the first match of no counter in testdata/proc", r.pattern)
		}
	}
}

func TestNotable(t *testing.T) {
	changes := []Change{
		{"Icmp OutDestUnreachs", 1, 1},
		{"Ip InReceives", 1, 10},
		{"Tcp CurrEstab", 1, 2},
		{"TcpExt TCPBacklogDrop", -5, 0}, // a reset, not a drop
		{"Udp NoPorts", 1, 4},
		{"dev vB rx_dropped", 2, 2},
	}
	want := []Change{changes[0], changes[4], changes[5]}
	if got := Notable(changes); !reflect.DeepEqual(got, want) {
		t.Errorf("Notable = %v, want %v", got, want)
	}
	if got := Notable(nil); got != nil {
		t.Errorf("Notable(nil) = %v", got)
	}
}
