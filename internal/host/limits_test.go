package host

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/limits"
)

// Past Checks.Max live checks in a second, a check answers "unknown" and
// is counted.
func TestChecksLimit(t *testing.T) {
	limits.Reset()
	now := int64(1e9)
	saved := Checks
	Checks = limits.NewRate("live checks (test)", 3, "skipped", func() int64 { return now })
	defer func() { Checks = saved }()
	var h Host
	known := 0
	for i := 0; i < 10; i++ {
		if _, ok := h.Forwarding(0, 4, ""); ok {
			known++
		}
	}
	if known != 3 || Checks.Hits() != 7 {
		t.Errorf("%d of 10 checks answered, %d counted; want 3 and 7", known, Checks.Hits())
	}
	now += 1e9
	if _, ok := h.Forwarding(0, 4, ""); !ok {
		t.Errorf("a check a second later was refused")
	}
}
