package metrics

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/drops"
	"github.com/skbtrail/skbtrail/internal/names"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMetrics(t *testing.T) {
	m := New("kfree_skb", "", 4096)
	m.SetMode("tp_btf")
	totals := []drops.Row{
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532386, Device: "veth-b", Count: 1007, Total: 1007},
		{Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9a", Netns: 4026531840, Device: "eth0", Count: 10, Total: 10},
		{Reason: "NOT_SPECIFIED", Location: "sk_stream_kill_queues+0x52", Netns: 4026531840, Count: 2, Total: 2},
		{Reason: "UNKNOWN_4242", Location: "0xffffffffc0a01234", Count: 1, Total: 1},
	}
	m.Update(totals, drops.Interval{Drops: 7, Total: 1020, Keys: 4096, Lost: 3, LostAll: 3})
	m.ReadError()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// Only skbtrail's own series: process_* and go_* vary from run to run.
	var own []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "skbtrail_") && !strings.Contains(line, "skbtrail_last_update_timestamp_seconds ") {
			own = append(own, line)
		}
	}
	got := []byte(strings.Join(own, "\n") + "\n")
	path := filepath.Join("testdata", "metrics.txt")
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
		t.Errorf("the scrape differs from the golden file:\n--- got\n%s\n--- want\n%s", got, want)
	}
	if !strings.Contains(string(body), "process_resident_memory_bytes") {
		t.Errorf("no process metrics in the scrape")
	}
}

func TestServeBadAddr(t *testing.T) {
	if _, err := Serve("256.0.0.1:x", New("kfree_skb", "", 1).Handler()); err == nil {
		t.Fatal("want an error for a bad address")
	}
}

type podNamer map[uint32]names.Who

func (n podNamer) Who(ino uint32) names.Who { return n[ino] }

// TestPodLabels: with PodLabels, drops carry the pod of their namespace,
// and there are exactly as many series as without.
func TestPodLabels(t *testing.T) {
	m := New("kfree_skb", "tp_btf", 4096)
	m.PodLabels(podNamer{4026532386: {Pod: "web-7c9f", PodNamespace: "default"}})
	m.Update([]drops.Row{
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532386, Device: "eth0", Count: 5},
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026531840, Device: "eth0", Count: 2},
	}, drops.Interval{})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`skbtrail_drops_total{device="eth0",location="__udp4_lib_rcv+0x4bc",netns="4026532386",pod="web-7c9f",pod_namespace="default",reason="NO_SOCKET"} 5`,
		`skbtrail_drops_total{device="eth0",location="__udp4_lib_rcv+0x4bc",netns="4026531840",pod="",pod_namespace="",reason="NO_SOCKET"} 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in:\n%s", want, body)
		}
	}
	if n := strings.Count(string(body), "\nskbtrail_drops_total{"); n != 2 {
		t.Errorf("%d drop series, want 2", n)
	}
}
