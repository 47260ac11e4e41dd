// Package monitor is the drops session (`skbtrail drops`): it attaches
// the in-kernel drop counter, reads it every interval, and hands the
// intervals to the table, JSON and Prometheus renderers.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	probedrops "github.com/skbtrail/skbtrail/internal/probe/drops"

	"github.com/skbtrail/skbtrail/internal/drops"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/metrics"
	"github.com/skbtrail/skbtrail/internal/output"
)

// Config says what to count and how to report it.
type Config struct {
	Filter   filter.Filter
	Interval time.Duration // report every Interval
	Top      int           // rows per report; 0: all
	Stack    bool          // record kernel stacks, show the top 5
	JSON     bool          // JSON lines instead of a table
	Metrics  string        // serve Prometheus metrics at this address; "": no
	MaxKeys  int           // keys the kernel counts
	Count    int           // stop after this many intervals; 0: no limit
	Duration time.Duration // stop after this long; 0: no limit
	Out      io.Writer     // reports
	Log      io.Writer     // progress and warnings (stderr)
	Terminal bool          // Out is a terminal: redraw the table in place
	// Names names the namespaces of the table and the JSON records (pod,
	// netns name, process); nil: inodes.
	Names output.Namer
	// Notice, when set, is said once on Log when counting begins (that no
	// runtime names pods).
	Notice string
	// PodLabels adds pod and pod_namespace labels to the drop metrics
	// (--metrics-labels pod); needs Names.
	PodLabels bool
}

// BadMetricsAddr is the error for a metrics address that cannot be
// listened on: bad input, nothing was attached.
type BadMetricsAddr struct {
	Addr string
	Err  error
}

func (e *BadMetricsAddr) Error() string { return fmt.Sprintf("--metrics %q: %v", e.Addr, e.Err) }
func (e *BadMetricsAddr) Unwrap() error { return e.Err }

// Run attaches the drop counter and reports until ctx is done, the count
// of intervals is reached or the duration is over.
func Run(ctx context.Context, cfg Config) error {
	f, stdout, stderr := cfg.Filter, cfg.Out, cfg.Log
	// Kernel symbols and drop reason names load while the program is
	// loaded and attached (they are independent): start-up is the longer
	// of the two, not their sum. The first report waits for them.
	type names struct {
		reason func(uint32) string
		symbol func(uint64) string
		warn   []string
	}
	namesc := make(chan names, 1)
	go func() {
		var n names
		if spec, err := kernel.BTF(); err == nil {
			if r, err := kernel.LoadReasons(spec); err == nil {
				n.reason = r.Name
			} else {
				n.warn = append(n.warn, fmt.Sprintf("%v: drop reasons are shown as numbers", err))
			}
		}
		if syms, err := kernel.LoadSymbols(); err == nil {
			n.symbol = syms.Symbolize
		} else {
			n.warn = append(n.warn, fmt.Sprintf("%v: drop locations are shown as addresses", err))
		}
		namesc <- n
	}()

	var srv interface{ Close() error }
	var m *metrics.Metrics
	if cfg.Metrics != "" {
		// The metrics need the mode, known after attaching; listen first
		// anyway so that a busy address fails before anything is loaded.
		m = metrics.New(event.KfreeSkb.String(), "", cfg.MaxKeys)
		if cfg.PodLabels && cfg.Names != nil {
			m.PodLabels(cfg.Names)
		}
		s, err := metrics.Serve(cfg.Metrics, m.Handler())
		if err != nil {
			return &BadMetricsAddr{cfg.Metrics, err}
		}
		srv = s
		defer srv.Close()
	}

	dr, err := probedrops.Open(probedrops.Options{Filter: f, Stack: cfg.Stack, MaxKeys: cfg.MaxKeys})
	if err != nil {
		return err
	}
	defer dr.Close()
	var namer drops.Namer
	if cfg.Stack {
		namer.Stack = dr.Stack
	}
	if m != nil {
		m.SetMode(string(dr.Mode))
	}
	start := time.Now()
	agg := drops.New(namer, start)
	namesReady := false

	var out output.DropsRenderer
	if cfg.JSON {
		js := output.NewDropsJSON(stdout)
		js.Names = cfg.Names
		out = js
	} else {
		stackTop := 0
		if cfg.Stack {
			stackTop = 5
		}
		tx := output.NewDropsText(stdout, cfg.Top, stackTop, cfg.Terminal)
		tx.Names = cfg.Names
		out = tx
	}
	where := ""
	if cfg.Metrics != "" {
		where = ", metrics at http://" + cfg.Metrics + "/metrics"
	}
	if cfg.Notice != "" {
		fmt.Fprintf(stderr, "skbtrail: %s\n", cfg.Notice)
	}
	fmt.Fprintf(stderr, "begin trace... (counting drops at skb:kfree_skb via %s, filter: %s, every %s%s; Ctrl-C to stop)\n",
		dr.Mode, f, cfg.Interval, where)

	var deadline <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(cfg.Duration)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()

	var buf []event.DropCount
	intervals := 0
	report := func() error {
		if !namesReady {
			n := <-namesc
			for _, w := range n.warn {
				fmt.Fprintf(stderr, "skbtrail: warning: %s\n", w)
			}
			agg.Namer.Reason, agg.Namer.Symbol, namesReady = n.reason, n.symbol, true
		}
		var err error
		buf, err = dr.Read(buf)
		if err != nil {
			if m != nil {
				m.ReadError()
			}
			return fmt.Errorf("read drop counts: %w", err)
		}
		iv := agg.Update(time.Now(), buf, dr.Full())
		intervals++
		if m != nil {
			m.Update(agg.Totals(), iv)
		}
		// Make room when the map is filling up: forget keys idle for a
		// minute's worth of intervals.
		if iv.Keys > dr.MaxKeys*3/4 {
			idle := max(2, int(time.Minute/cfg.Interval))
			if err := dr.Delete(agg.Prune(idle)); err != nil {
				fmt.Fprintf(stderr, "skbtrail: warning: deleting idle keys: %v\n", err)
			}
		}
		if err := out.Interval(iv); err != nil && !errors.Is(err, syscall.EPIPE) {
			return err
		}
		return nil
	}

	for {
		select {
		case <-ctx.Done():
		case <-deadline:
		case <-tick.C:
			if err := report(); err != nil {
				return err
			}
			if cfg.Count > 0 && intervals >= cfg.Count {
				return out.Summary(agg.Totals(), time.Since(start), dr.Full())
			}
			continue
		}
		break
	}
	// The final, partial interval.
	if err := report(); err != nil {
		return err
	}
	return out.Summary(agg.Totals(), time.Since(start), dr.Full())
}
