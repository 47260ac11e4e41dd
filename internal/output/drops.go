package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/skbtrail/skbtrail/internal/drops"
)

// DropsRenderer shows `skbtrail drops` reports: one per interval, and a
// summary of the whole run when it ends.
type DropsRenderer interface {
	Interval(iv drops.Interval) error
	Summary(rows []drops.Row, d time.Duration, lostAll uint64) error
}

// DropsText is the drops table for people. Each interval shows the keys
// with drops in it, most first; Top bounds the rows (0: all), and the first
// StackTop rows show their kernel stack when one was recorded. With Clear
// (a terminal) each interval replaces the previous one on screen.
type DropsText struct {
	w        *bufio.Writer
	Top      int
	StackTop int
	Clear    bool
	Names    Namer // names namespaces (pod, netns name, process); nil: inodes
}

// NewDropsText returns a DropsText writing to w.
func NewDropsText(w io.Writer, top, stackTop int, clear bool) *DropsText {
	return &DropsText{w: bufio.NewWriter(w), Top: top, StackTop: stackTop, Clear: clear}
}

// Interval writes one interval's table.
func (t *DropsText) Interval(iv drops.Interval) error {
	if t.Clear {
		t.w.WriteString("\x1b[H\x1b[2J")
	}
	fmt.Fprintf(t.w, "%s  %d drops in %s (total %d, %d keys)\n",
		iv.Time.Format("15:04:05"), iv.Drops, fmtInterval(iv.Duration), iv.Total, iv.Keys)
	if iv.Lost > 0 {
		fmt.Fprintf(t.w, "  %d drops not counted: the kernel map of keys is full\n", iv.Lost)
	}
	t.table(iv.Rows, true)
	if !t.Clear {
		t.w.WriteString("\n")
	}
	return t.w.Flush()
}

// Summary writes every key's drops over the run.
func (t *DropsText) Summary(rows []drops.Row, d time.Duration, lostAll uint64) error {
	var n uint64
	for _, r := range rows {
		n += r.Count
	}
	fmt.Fprintf(t.w, "total: %d drops in %s\n", n, fmtInterval(d))
	if lostAll > 0 {
		fmt.Fprintf(t.w, "  %d drops not counted: the kernel map of keys was full\n", lostAll)
	}
	t.table(rows, false)
	return t.w.Flush()
}

func (t *DropsText) table(rows []drops.Row, withTotal bool) {
	if len(rows) == 0 {
		return
	}
	shown := rows
	if t.Top > 0 && len(shown) > t.Top {
		shown = shown[:t.Top]
	}
	// Column widths from the rows shown, so the table stays narrow.
	wr, wl, wd, wn := len("REASON"), len("LOCATION"), len("DEVICE"), 10
	for _, r := range shown {
		wn = max(wn, len(t.netns(r.Netns)))
		wr = max(wr, len(orDash(r.Reason)))
		wl = max(wl, len(orDash(r.Location)))
		wd = max(wd, len(orDash(r.Device)))
	}
	if withTotal {
		fmt.Fprintf(t.w, "%10s %10s  %-*s  %-*s  %-*s  %s\n", "COUNT", "TOTAL", wr, "REASON", wl, "LOCATION", wn, "NETNS", "DEVICE")
	} else {
		fmt.Fprintf(t.w, "%10s  %-*s  %-*s  %-*s  %s\n", "COUNT", wr, "REASON", wl, "LOCATION", wn, "NETNS", "DEVICE")
	}
	for i, r := range shown {
		if withTotal {
			fmt.Fprintf(t.w, "%10d %10d  ", r.Count, r.Total)
		} else {
			fmt.Fprintf(t.w, "%10d  ", r.Count)
		}
		fmt.Fprintf(t.w, "%-*s  %-*s  %-*s  %s\n", wr, orDash(r.Reason), wl, orDash(r.Location), wn, t.netns(r.Netns), orDash(r.Device))
		if i < t.StackTop {
			for _, f := range r.Stack {
				fmt.Fprintf(t.w, "%12s%s\n", "", f)
			}
		}
	}
	if rest := rows[len(shown):]; len(rest) > 0 {
		var n uint64
		for _, r := range rest {
			n += r.Count
		}
		fmt.Fprintf(t.w, "%10d  ... in %d more keys\n", n, len(rest))
	}
}

// netns names a row's namespace: "pod default/web", "netns blue", "host",
// or the inode.
func (t *DropsText) netns(ino uint32) string {
	if w := who(t.Names, ino); w.Known() {
		return w.Short()
	}
	return netnsString(ino)
}

func netnsString(ino uint32) string {
	if ino == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(ino), 10)
}

func fmtInterval(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s"
	default:
		return d.Round(time.Millisecond).String()
	}
}

// DropsJSON writes JSON lines: per interval, one "drop" record per key
// with drops in it (count: drops in the interval, so that summing a key's
// records over the run gives its total), then one "interval" record. The
// summary writes nothing: it would count drops twice.
type DropsJSON struct {
	w     *bufio.Writer
	Names Namer // adds netns_name, pod, pod_namespace, container where known
}

// NewDropsJSON returns a DropsJSON writing to w.
func NewDropsJSON(w io.Writer) *DropsJSON { return &DropsJSON{w: bufio.NewWriter(w)} }

// DropRecord is one key's drops in one interval, as --json writes it.
type DropRecord struct {
	Type     string `json:"type"` // "drop"
	Time     string `json:"time"` // RFC 3339, when the interval ended
	Reason   string `json:"reason"`
	Location string `json:"location"`
	Netns    uint32 `json:"netns"`
	// What is known of the namespace (with a Namer; omitted when unknown).
	NetnsName    string   `json:"netns_name,omitempty"`
	Pod          string   `json:"pod,omitempty"`
	PodNamespace string   `json:"pod_namespace,omitempty"`
	Container    string   `json:"container,omitempty"`
	Ifname       string   `json:"ifname"`
	Count        uint64   `json:"count"` // drops in the interval
	Total        uint64   `json:"total"` // drops of this key over the run so far
	Stack        []string `json:"stack,omitempty"`
}

// IntervalRecord ends each interval's records.
type IntervalRecord struct {
	Type    string  `json:"type"` // "interval"
	Time    string  `json:"time"`
	Seconds float64 `json:"seconds"` // the interval's length
	Drops   uint64  `json:"drops"`   // in the interval
	Total   uint64  `json:"total"`   // over the run
	Lost    uint64  `json:"lost"`    // not counted in the interval: map full
	LostAll uint64  `json:"lost_total"`
	Keys    int     `json:"keys"` // keys in the kernel map
	Rows    int     `json:"rows"` // drop records written for the interval
}

// Interval writes the interval's records.
func (j *DropsJSON) Interval(iv drops.Interval) error {
	ts := iv.Time.Format(time.RFC3339Nano)
	enc := json.NewEncoder(j.w)
	for _, r := range iv.Rows {
		rec := DropRecord{Type: "drop", Time: ts, Reason: r.Reason, Location: r.Location,
			Netns: r.Netns, Ifname: r.Device, Count: r.Count, Total: r.Total, Stack: r.Stack}
		if w := who(j.Names, r.Netns); w.Known() {
			rec.NetnsName, rec.Pod, rec.PodNamespace, rec.Container = w.NetnsName, w.Pod, w.PodNamespace, w.Container
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	if err := enc.Encode(IntervalRecord{Type: "interval", Time: ts, Seconds: iv.Duration.Seconds(), Drops: iv.Drops,
		Total: iv.Total, Lost: iv.Lost, LostAll: iv.LostAll, Keys: iv.Keys, Rows: len(iv.Rows)}); err != nil {
		return err
	}
	return j.w.Flush()
}

// Summary writes nothing: the interval records already hold every drop.
func (j *DropsJSON) Summary([]drops.Row, time.Duration, uint64) error { return j.w.Flush() }
