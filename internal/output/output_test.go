package output

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func sample() []*track.Story {
	ping := event.Packet{Source: event.FromHeaders, Family: 4, Proto: 1, Src: netip.MustParseAddr("198.18.3.1"),
		Dst: netip.MustParseAddr("198.18.3.2"), TTL: 64, IPLen: 84, ICMPType: 8, ICMPID: 7, ICMPSeq: 1}
	syn := event.Packet{Source: event.FromHeaders, Family: 6, Proto: 6, Src: netip.MustParseAddr("fd00:3::1"),
		Dst: netip.MustParseAddr("fd00:3::2"), Sport: 40000, Dport: 81, TCPFlags: 0x02, Seq: 1234}
	at := func(us int) (time.Time, uint64) {
		d := time.Duration(us) * time.Microsecond
		return t0.Add(d), uint64(d)
	}
	mk := func(us int, skb uint64, probe, group string, p event.Packet, ns uint32, dev string) event.Event {
		tm, k := at(us)
		id, _ := event.ProbeNamed(probe)
		return event.Event{Time: tm, Kernel: k, Skb: skb, Probe: id, Name: probe, Group: group, Packet: p,
			CPU: 1, PID: 4242, Comm: "ping", Netns: ns, Ifname: dev, Len: 98}
	}
	delivered := &track.Story{Skb: 0xffff888100aa0000, Ended: true, Events: []event.Event{
		mk(0, 0xffff888100aa0000, "net_dev_queue", "link", ping, 4026532281, "veth-a"),
		mk(5, 0xffff888100aa0000, "net_dev_start_xmit", "link", ping, 4026532281, "veth-a"),
		mk(9, 0xffff888100aa0000, "net_dev_xmit", "link", ping, 4026532281, "veth-a"),
		mk(20, 0xffff888100aa0000, "netif_receive_skb", "link", ping, 4026532282, "veth-b"),
		mk(31, 0xffff888100aa0000, "consume_skb", "life", ping, 4026532282, "veth-b"),
	}}
	delivered.Events[2].Packet = event.Packet{} // net_dev_xmit reads no headers
	drop := mk(40, 0xffff888100bb0000, "kfree_skb", "life", syn, 4026532282, "veth-b")
	drop.Reason, drop.ReasonCode, drop.Location = "NO_SOCKET", 2, "tcp_v6_rcv+0x1a4"
	dropped := &track.Story{Skb: 0xffff888100bb0000, Ended: true, Dropped: true, Events: []event.Event{
		mk(30, 0xffff888100bb0000, "netif_receive_skb", "link", syn, 4026532282, "veth-b"),
		mk(35, 0xffff888100bb0000, "tcp_send_reset", "tcp", syn, 4026532282, "veth-b"),
		drop,
	}}
	open := &track.Story{Skb: 0xffff888100cc0000, Events: []event.Event{
		mk(50, 0xffff888100cc0000, "netif_receive_skb", "link", ping, 4026532282, "veth-b"),
	}}
	return []*track.Story{delivered, dropped, open}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail bool
		basic  bool
	}{
		{"lifecycle.txt", false, false},
		{"detail.txt", true, false},
		{"basic.txt", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			r := NewText(&buf, tc.detail)
			for _, s := range sample() {
				if tc.basic {
					for _, e := range s.Events {
						r.Event(e)
					}
				} else {
					r.Story(s)
				}
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	r := NewJSON(&buf)
	for _, s := range sample() {
		r.Story(s)
	}
	golden(t, "events.jsonl", buf.Bytes())

	// Every line is an object with the documented keys.
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 9 {
		t.Fatalf("got %d lines, want 9", len(lines))
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		for _, k := range []string{"type", "probe", "skb", "time", "netns", "ifname", "proto", "saddr", "daddr", "sport", "dport"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %s lacks %q", l, k)
			}
		}
		if m["probe"] == "kfree_skb" && (m["reason"] != "NO_SOCKET" || m["location"] != "tcp_v6_rcv+0x1a4") {
			t.Errorf("drop event lacks reason and location: %s", l)
		}
	}
}
