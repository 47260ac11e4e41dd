package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/drops"
)

func dropIntervals() []drops.Interval {
	return []drops.Interval{
		{
			Time: t0.Add(time.Second), Duration: time.Second, Drops: 1013, Total: 1013, Keys: 4,
			Rows: []drops.Row{
				{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532386, Device: "veth-b", Count: 1000, Total: 1000,
					Stack: []string{"__udp4_lib_rcv+0x4bc", "ip_protocol_deliver_rcu+0xb3", "ip_local_deliver_finish+0x81"}},
				{Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9a", Netns: 4026531840, Device: "eth0", Count: 10, Total: 10},
				{Reason: "NOT_SPECIFIED", Location: "sk_stream_kill_queues+0x52", Netns: 4026531840, Count: 2, Total: 2},
				{Reason: "UNKNOWN_4242", Location: "0xffffffffc0a01234", Count: 1, Total: 1},
			},
		},
		{Time: t0.Add(2 * time.Second), Duration: 1001 * time.Millisecond, Total: 1013, Keys: 4},
		{
			Time: t0.Add(2500 * time.Millisecond), Duration: 500 * time.Millisecond, Drops: 7, Total: 1020, Keys: 4096, Lost: 3, LostAll: 3,
			Rows: []drops.Row{{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532386, Device: "veth-b", Count: 7, Total: 1007}},
		},
	}
}

func dropTotals() []drops.Row {
	return []drops.Row{
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532386, Device: "veth-b", Count: 1007, Total: 1007},
		{Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9a", Netns: 4026531840, Device: "eth0", Count: 10, Total: 10},
		{Reason: "NOT_SPECIFIED", Location: "sk_stream_kill_queues+0x52", Netns: 4026531840, Count: 2, Total: 2},
		{Reason: "UNKNOWN_4242", Location: "0xffffffffc0a01234", Count: 1, Total: 1},
	}
}

func renderDrops(t *testing.T, r DropsRenderer) {
	t.Helper()
	for _, iv := range dropIntervals() {
		if err := r.Interval(iv); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Summary(dropTotals(), 2500*time.Millisecond, 3); err != nil {
		t.Fatal(err)
	}
}

func TestDropsText(t *testing.T) {
	for _, tc := range []struct {
		name          string
		top, stackTop int
	}{
		{"drops.txt", 20, 0},
		{"drops_top2_stack.txt", 2, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			renderDrops(t, NewDropsText(&b, tc.top, tc.stackTop, false))
			golden(t, tc.name, b.Bytes())
		})
	}
}

func TestDropsTextClear(t *testing.T) {
	var b bytes.Buffer
	r := NewDropsText(&b, 0, 0, true)
	if err := r.Interval(dropIntervals()[0]); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "\x1b[H\x1b[2J") {
		t.Errorf("a terminal's table does not start by clearing the screen: %q", b.String()[:20])
	}
}

func TestDropsJSON(t *testing.T) {
	var b bytes.Buffer
	renderDrops(t, NewDropsJSON(&b))
	golden(t, "drops.jsonl", b.Bytes())

	// Summing a key's "drop" records gives its total; every line has a
	// type and an RFC 3339 time.
	sums := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var rec struct {
			Type, Time, Reason, Location, Ifname string
			Netns                                uint32
			Count, Total                         uint64
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil {
			t.Errorf("time %q: %v", rec.Time, err)
		}
		if rec.Type == "drop" {
			k := rec.Reason + rec.Location + rec.Ifname
			sums[k] += rec.Count
			if sums[k] != rec.Total {
				t.Errorf("%s: running sum %d, record says total %d", k, sums[k], rec.Total)
			}
		}
	}
}
