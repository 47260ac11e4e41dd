package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/skbtrail/skbtrail/internal/catalog"
)

// CheckReport is what `skbtrail check` shows: the kernel, what it supports,
// and what skbtrail will use.
type CheckReport struct {
	Release     string     // uname -r
	Lockdown    string     // the lockdown mode, or "unknown"
	Support     []CheckRow // feature by feature
	Funcs       string     // which function probe source is used, in words
	Tracepoints []catalog.Avail
}

// CheckRow is one kernel feature: what skbtrail uses it for, and whether
// the kernel has it (and if not, why).
type CheckRow struct {
	Name, Use string
	OK        bool
	Detail    string
}

// Check writes what the running kernel supports and what skbtrail will use.
func Check(w io.Writer, r CheckReport) {
	fmt.Fprintf(w, "kernel         %s\n", r.Release)
	fmt.Fprintf(w, "lockdown       %s\n", r.Lockdown)
	for _, row := range r.Support {
		mark := "yes"
		if !row.OK {
			mark = "no "
		}
		line := fmt.Sprintf("%-14s %s  %-34s", row.Name, mark, row.Use)
		if !row.OK {
			line += " " + row.Detail
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	st := r.Tracepoints
	n, mode := 0, catalog.Mode("")
	for _, s := range st {
		if s.Mode != "" {
			n++
			mode = s.Mode
		}
	}
	fmt.Fprintln(w, r.Funcs)
	fmt.Fprintln(w)
	if n == 0 {
		fmt.Fprintln(w, "skbtrail will use: nothing: no tracepoint can be attached on this kernel")
		return
	}
	fmt.Fprintf(w, "skbtrail will use: %d of %d tracepoints via %s", n, len(st), mode)
	if n < len(st) {
		fmt.Fprint(w, " (run 'skbtrail -t ?' for the missing ones)")
	}
	fmt.Fprintln(w)
}
