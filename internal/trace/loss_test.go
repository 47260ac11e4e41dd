package trace

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/output"
)

type fakeCounts struct{ lost, limited uint64 }

func (f *fakeCounts) Lost() uint64    { return f.lost }
func (f *fakeCounts) Limited() uint64 { return f.limited }

// TestLossReport: losses are reported while tracing, at most once per
// interval, only when they grew, on stderr and as a JSON record.
func TestLossReport(t *testing.T) {
	var log, out bytes.Buffer
	cfg := Config{Log: &log, Out: output.NewJSON(&out)}
	c := &fakeCounts{}
	t0 := time.Unix(1000, 0)
	l := &lossReport{every: 5 * time.Second, next: t0}
	steps := []struct {
		at            time.Duration
		lost, limited uint64
		want          string // "" : no line
	}{
		{0, 0, 0, ""},
		{1 * time.Second, 10, 0, ""}, // too soon after the last look
		{5 * time.Second, 10, 3, "10 events lost (ring buffer full), 3 over --rate-limit; in all 10 and 3"},
		{6 * time.Second, 20, 3, ""},
		{10 * time.Second, 20, 3, "10 events lost (ring buffer full), 0 over --rate-limit; in all 20 and 3"},
		{15 * time.Second, 20, 3, ""}, // nothing new
	}
	for _, s := range steps {
		c.lost, c.limited = s.lost, s.limited
		log.Reset()
		l.check(cfg, c, t0.Add(s.at))
		got := strings.TrimSpace(log.String())
		if s.want == "" && got != "" || s.want != "" && !strings.Contains(got, s.want) {
			t.Errorf("at %v: stderr %q, want %q", s.at, got, s.want)
		}
	}
	var recs []output.Loss
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r output.Loss
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 || recs[0].Type != "loss" || recs[0].Lost != 10 || recs[0].Limited != 3 || recs[1].LostTotal != 20 || recs[1].Interval != 5 {
		t.Errorf("JSON records = %+v", recs)
	}
}
