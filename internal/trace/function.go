package trace

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/probe/function"
)

// probesLine says what a session attached: "19 tracepoints via tp_btf,
// 3 functions (3 via fentry/fexit)".
func probesLine(sess *probe.Session, funcs *function.Report) string {
	var parts []string
	if n := len(sess.Attached); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tracepoints via %s", n, sess.Attached[0].Mode))
	}
	if n := len(funcs.Attached); n > 0 {
		parts = append(parts, fmt.Sprintf("%d functions (%s)", n, funcs.ModeString()))
	}
	return strings.Join(parts, ", ")
}

// reportFuncs writes, on the log, what the function probes could not do
// and what that costs, and how long attaching took when it was long.
func reportFuncs(log io.Writer, f *function.Report) {
	if f.Wanted == 0 {
		return
	}
	if f.Why != "" {
		fmt.Fprintf(log, "skbtrail: %s: tracepoints only (%d selected functions not traced)\n", f.Why, f.Wanted)
		return
	}
	if len(f.Skipped) > 0 {
		fmt.Fprintf(log, "skbtrail: %d of %d functions cannot be probed here, skipped:", len(f.Skipped), f.Wanted)
		for i, s := range f.Skipped {
			if i == 10 {
				fmt.Fprintf(log, " ... and %d more", len(f.Skipped)-i)
				break
			}
			fmt.Fprintf(log, " %s (%s);", s.Name, s.Why)
		}
		fmt.Fprintln(log)
	}
	if len(f.Attached) > 0 && (f.Wanted > 20 || f.Took > 2*time.Second) {
		fmt.Fprintf(log, "skbtrail: attached %d of %d functions (%s) in %.1fs (%.1fs finding them)\n", len(f.Attached), f.Wanted, f.ModeString(), f.Took.Seconds(), f.Resolve.Seconds())
	}
}

// openFunctions attaches the selected function tracers to sess; with none
// selected it returns an empty report. It fails when loading fails, or
// when neither a tracepoint nor a function could be attached.
func openFunctions(sess *probe.Session, tracers []catalog.Tracer, ret bool) (*function.Report, error) {
	var fns []catalog.Tracer
	for _, t := range tracers {
		if t.Func {
			fns = append(fns, t)
		}
	}
	rep := &function.Report{}
	if len(fns) > 0 {
		var err error
		if rep, err = function.Attach(sess, fns, ret); err != nil {
			return nil, err
		}
	}
	if len(sess.Attached) == 0 && len(rep.Attached) == 0 {
		var r *function.Report
		if len(fns) > 0 {
			r = rep
		}
		return nil, function.Nothing(sess.Skipped, r)
	}
	return rep, nil
}
