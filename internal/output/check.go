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
	Privileges  []PrivRow // per mode: what it needs to start and keeps after
	Held        string    // the capabilities this process holds
}

// PrivRow is one mode's capabilities: to start, and kept for the rest of
// the run (with why), and whether --user is allowed.
type PrivRow struct {
	Mode, Start, Keep, Why string
	User                   bool
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
	checkPrivileges(w, r)
}

func checkPrivileges(w io.Writer, r CheckReport) {
	if len(r.Privileges) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "capabilities held: %s\n", r.Held)
	for _, p := range r.Privileges {
		user := "--user allowed"
		if !p.User {
			user = "no --user"
		}
		fmt.Fprintf(w, "%-6s needs to start: %s\n", p.Mode, p.Start)
		fmt.Fprintf(w, "%-6s keeps after:    %s (%s; %s)\n", "", p.Keep, p.Why, user)
	}
}
