package drops

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/event"
)

var t0 = time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)

func testNamer() Namer {
	return Namer{
		Reason: func(c uint32) string { return map[uint32]string{2: "NO_SOCKET", 6: "NETFILTER_DROP"}[c] },
		Symbol: func(a uint64) string {
			return map[uint64]string{0x100: "__udp4_lib_rcv+0x4bc", 0x200: "nf_hook_slow+0x9a",
				0x1000: "kfree_skb_reason+0x10", 0x1001: "__udp4_lib_rcv+0x4bc", 0x1002: "ip_local_deliver+0x20"}[a]
		},
		Stack: func(id int32) ([]uint64, error) {
			if id == 7 {
				return []uint64{0x1000, 0x1001, 0x1002}, nil
			}
			return nil, fmt.Errorf("no stack %d", id)
		},
	}
}

func key(loc uint64, reason, netns uint32, dev string, stack int32) event.DropKey {
	return event.DropKey{Location: loc, Reason: reason, Netns: netns, Ifname: dev, Stack: stack}
}

func dc(k event.DropKey, n uint64) event.DropCount { return event.DropCount{Key: k, Count: n} }

func TestUpdateDeltas(t *testing.T) {
	a := New(testNamer(), t0)
	udp := key(0x100, 2, 11, "veth-b", -1)
	nf := key(0x200, 6, 12, "", -1)

	iv := a.Update(t0.Add(time.Second), []event.DropCount{dc(udp, 10), dc(nf, 3)}, 0)
	want := []Row{
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 11, Device: "veth-b", Count: 10, Total: 10},
		{Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9a", Netns: 12, Count: 3, Total: 3},
	}
	if !reflect.DeepEqual(iv.Rows, want) || iv.Drops != 13 || iv.Total != 13 || iv.Duration != time.Second || iv.Keys != 2 {
		t.Fatalf("first interval: %+v", iv)
	}

	// udp +5, nf idle, full counter +4.
	iv = a.Update(t0.Add(2*time.Second), []event.DropCount{dc(udp, 15), dc(nf, 3)}, 4)
	if len(iv.Rows) != 1 || iv.Rows[0].Count != 5 || iv.Rows[0].Total != 15 || iv.Drops != 5 || iv.Total != 18 || iv.Lost != 4 || iv.LostAll != 4 {
		t.Fatalf("second interval: %+v", iv)
	}

	// Nothing new.
	iv = a.Update(t0.Add(3*time.Second), []event.DropCount{dc(udp, 15), dc(nf, 3)}, 4)
	if len(iv.Rows) != 0 || iv.Drops != 0 || iv.Lost != 0 || iv.Total != 18 {
		t.Fatalf("idle interval: %+v", iv)
	}

	// Summing the intervals gives the totals.
	tot := a.Totals()
	if len(tot) != 2 || tot[0].Count != 15 || tot[0].Total != 15 || tot[1].Count != 3 {
		t.Fatalf("totals: %+v", tot)
	}
}

func TestStackKeysMerge(t *testing.T) {
	a := New(testNamer(), t0)
	// One (reason, location, netns, device) with two stacks: one row, the
	// more frequent stack, named from the dropping function on.
	iv := a.Update(t0.Add(time.Second), []event.DropCount{
		dc(key(0x100, 2, 11, "veth-b", 7), 8),
		dc(key(0x100, 2, 11, "veth-b", 9), 2),
	}, 0)
	if len(iv.Rows) != 1 || iv.Rows[0].Count != 10 {
		t.Fatalf("rows: %+v", iv.Rows)
	}
	if want := []string{"__udp4_lib_rcv+0x4bc", "ip_local_deliver+0x20"}; !reflect.DeepEqual(iv.Rows[0].Stack, want) {
		t.Errorf("stack %q, want %q", iv.Rows[0].Stack, want)
	}
}

func TestPruneAndReappear(t *testing.T) {
	a := New(testNamer(), t0)
	k := key(0x100, 2, 11, "veth-b", -1)
	a.Update(t0.Add(1*time.Second), []event.DropCount{dc(k, 5)}, 0)
	a.Update(t0.Add(2*time.Second), []event.DropCount{dc(k, 5)}, 0)
	if p := a.Prune(2); len(p) != 0 {
		t.Fatalf("pruned after 1 idle interval: %v", p)
	}
	a.Update(t0.Add(3*time.Second), []event.DropCount{dc(k, 5)}, 0)
	if p := a.Prune(2); len(p) != 1 || p[0] != k {
		t.Fatalf("prune = %v, want [%v]", p, k)
	}
	// Deleted from the kernel; it comes back from zero.
	iv := a.Update(t0.Add(4*time.Second), []event.DropCount{dc(k, 2)}, 0)
	if len(iv.Rows) != 1 || iv.Rows[0].Count != 2 || iv.Rows[0].Total != 7 {
		t.Fatalf("after prune: %+v", iv.Rows)
	}
	// A counter that went backwards (deleted and re-added between reads).
	iv = a.Update(t0.Add(5*time.Second), []event.DropCount{dc(k, 1)}, 0)
	if len(iv.Rows) != 1 || iv.Rows[0].Count != 1 || iv.Rows[0].Total != 8 {
		t.Fatalf("after reset: %+v", iv.Rows)
	}
}

func TestNamerFallback(t *testing.T) {
	a := New(Namer{}, t0)
	iv := a.Update(t0.Add(time.Second), []event.DropCount{dc(key(0xffffffff81234567, 77, 0, "", -1), 1)}, 0)
	if r := iv.Rows[0]; r.Reason != "UNKNOWN_77" || r.Location != "0xffffffff81234567" {
		t.Errorf("fallback names: %+v", r)
	}
}

func TestSortOrder(t *testing.T) {
	a := New(testNamer(), t0)
	iv := a.Update(t0.Add(time.Second), []event.DropCount{
		dc(key(0x200, 6, 1, "b", -1), 5),
		dc(key(0x100, 2, 1, "a", -1), 5),
		dc(key(0x100, 2, 2, "a", -1), 9),
	}, 0)
	var got []string
	for _, r := range iv.Rows {
		got = append(got, fmt.Sprintf("%d %s %d", r.Count, r.Reason, r.Netns))
	}
	want := []string{"9 NO_SOCKET 2", "5 NETFILTER_DROP 1", "5 NO_SOCKET 1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}
