package counters

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Snapshot maps counter names (see the package documentation) to their values
// at one moment.
//
// Values are unsigned, as the kernel keeps them. The few fields the kernel
// prints as negative numbers (only "Tcp MaxConn", which is -1 for "no limit")
// are stored as their two's complement, so that [Diff] still computes the right
// delta.
type Snapshot map[string]uint64

// merge copies every counter of src into s.
func (s Snapshot) merge(src Snapshot) { maps.Copy(s, src) }

// Change is a counter that moved between two snapshots.
type Change struct {
	Name  string // the counter's name, e.g. "Udp NoPorts"
	Delta int64  // after minus before; negative for a gauge that went down or a counter that was reset
	After uint64 // the value in the later snapshot
}

// String formats c as the name and the signed delta: "Udp NoPorts +3".
func (c Change) String() string {
	return fmt.Sprintf("%s %+d", c.Name, c.Delta)
}

// Diff returns the counters whose value differs between before and after,
// sorted by name. A counter missing from before counts as 0 there (the kernel
// prints some, such as "IcmpMsg OutType3", only once they are non-zero); a
// counter missing from after (a device that went away) is left out.
//
// The delta is computed modulo 2^64 and read as signed, so a 64-bit counter
// that wrapped still gives its true small increase. The softnet and conntrack
// counters are 32 bits wide per CPU and summed over the CPUs; if one of them
// wraps between the snapshots, its delta is wrong.
func Diff(before, after Snapshot) []Change {
	var changes []Change
	for name, a := range after {
		b := before[name]
		if a == b {
			continue
		}
		changes = append(changes, Change{Name: name, Delta: int64(a - b), After: a})
	}
	slices.SortFunc(changes, func(x, y Change) int { return strings.Compare(x.Name, y.Name) })
	return changes
}
