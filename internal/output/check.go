package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/probe"
)

// Check writes what the running kernel supports and what skbtrail will use.
func Check(w io.Writer, f kernel.Features, st []probe.Status) {
	fmt.Fprintf(w, "kernel         %s\n", f.Version.Release)
	fmt.Fprintf(w, "lockdown       %s\n", f.Lockdown)
	rows := []struct {
		name, use string
		s         kernel.Support
	}{
		{"BTF", "CO-RE and tp_btf", f.BTF},
		{"tp_btf", "tracepoints (preferred)", f.TpBtf},
		{"raw_tp", "tracepoints (fallback)", f.RawTp},
		{"kprobe", "function probes", f.Kprobe},
		{"kprobe.multi", "many function probes at once", f.KprobeMulti},
		{"fentry/fexit", "function probes (preferred)", f.Fentry},
		{"netfilter link", "netfilter hook observers (--diag)", f.NetfilterLink},
	}
	for _, r := range rows {
		mark := "yes"
		if !r.s.OK {
			mark = "no "
		}
		line := fmt.Sprintf("%-14s %s  %-34s", r.name, mark, r.use)
		if !r.s.OK {
			line += " " + r.s.Detail
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	n, mode := 0, probe.Mode("")
	for _, s := range st {
		if s.Mode != "" {
			n++
			mode = s.Mode
		}
	}
	fmt.Fprintln(w, FuncProbes(f))
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

// FuncProbes says which function probe source skbtrail uses on this
// kernel, and what it falls back to.
func FuncProbes(f kernel.Features) string {
	if why := probe.FuncUnavailable(f); why != "" {
		return "function probes: none: " + strings.TrimPrefix(why, "function probes unavailable: ") + ": tracepoints only"
	}
	var use []string
	if f.Fentry.OK {
		use = append(use, "fentry/fexit")
	}
	if f.Kprobe.OK {
		if f.Fentry.OK {
			use = append(use, "kprobe/kretprobe where fentry cannot attach")
		} else {
			use = append(use, "kprobe/kretprobe")
		}
	}
	if f.KprobeMulti.OK {
		use = append(use, "kprobe.multi for many functions")
	} else {
		use = append(use, "no kprobe.multi: many functions attach one by one")
	}
	return "function probes: " + strings.Join(use, "; ")
}
