package limits

import (
	"bytes"
	"strings"
	"testing"
)

func TestLimitWarnsOnceAndReports(t *testing.T) {
	l := New("things", 3, "", "things dropped")
	var w bytes.Buffer
	Warn(&w)
	defer Warn(nil)
	if Report(&w); w.Len() != 0 {
		t.Fatalf("a report before any hit: %q", w.String())
	}
	l.Hit()
	l.Add(4)
	if got := strings.Count(w.String(), "\n"); got != 1 || !strings.Contains(w.String(), "things (at most 3)") {
		t.Errorf("warnings %q, want one naming the limit", w.String())
	}
	w.Reset()
	Report(&w)
	if !strings.Contains(w.String(), "things (at most 3) was reached: 5 things dropped") {
		t.Errorf("report %q", w.String())
	}
	Reset()
	if l.Hits() != 0 {
		t.Errorf("Reset left %d", l.Hits())
	}
}

func TestRate(t *testing.T) {
	now := int64(1e9)
	r := NewRate("checks", 10, "checks skipped", func() int64 { return now })
	ok := 0
	for i := 0; i < 25; i++ {
		if r.Allow() {
			ok++
		}
	}
	if ok != 10 || r.Hits() != 15 {
		t.Errorf("a burst of 25: %d allowed, %d hits; want 10, 15", ok, r.Hits())
	}
	now += 5e8 // half a second: 5 more
	ok = 0
	for i := 0; i < 10; i++ {
		if r.Allow() {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("after 0.5s: %d allowed, want 5", ok)
	}
	now += 100e9 // long idle: a full bucket, not more
	ok = 0
	for i := 0; i < 20; i++ {
		if r.Allow() {
			ok++
		}
	}
	if ok != 10 {
		t.Errorf("after idling: %d allowed, want 10", ok)
	}
}
