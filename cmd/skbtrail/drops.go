package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/drops"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/output"
	"github.com/skbtrail/skbtrail/internal/probe"
)

const dropsUsage = `skbtrail drops counts every packet the kernel drops, by drop reason,
dropping function, network namespace and device. The counting happens in
the kernel (no event per packet), so it is cheap enough to leave running.

Usage:
  skbtrail drops [flags]

Filter (the same as tracing; checked in the kernel on the dropped packet):
  -s, --saddr ADDR[/LEN]    source address or prefix
  -d, --daddr ADDR[/LEN]    destination address or prefix
      --addr ADDR[/LEN]     source or destination
  -S, --sport PORT          source port (tcp, udp)
  -D, --dport PORT          destination port
      --port PORT           source or destination port
  -p, --proto PROTO         tcp, udp, icmp, icmp6, or a protocol number
      --netns NS            only drops in this network namespace (name under
                            /run/netns, path, or inode number)
      --dev IFNAME          only drops of packets on this interface

Output:
  -i, --interval D          report every D (default 1s)
      --top N               rows per report (default 20; 0: all)
      --stack               show the kernel stack of the top 5 drops
      --json                JSON lines: per interval one "drop" record per
                            (reason, location, netns, ifname) with count = drops
                            in the interval, then one "interval" record
      --metrics ADDR        serve Prometheus metrics at http://ADDR/metrics
                            (e.g. :9464): skbtrail_drops_total{reason,location,
                            netns,device} and skbtrail's own health
      --max-keys N          keys the kernel counts (default 4096); drops of
                            further keys are reported as not counted

Running:
  -c, --count N             stop after N intervals
      --duration D          stop after D (e.g. 10s, 1m)
  -h, --help                this help

At exit (count, duration, Ctrl-C or SIGTERM) the last, partial interval is
reported too, and the text output ends with the totals of the run.
Exit status: 0 when stopped; 1 when counting failed; 2 for bad input.

Examples:
  skbtrail drops                                  every drop on the host
  skbtrail drops -p tcp --netns blue --stack      TCP drops in netns blue
  skbtrail drops --metrics :9464 --interval 15s   a Prometheus exporter
`

type dropsFlags struct {
	f         filter.Options
	interval  string
	top       int
	stack     bool
	jsonOut   bool
	metrics   string
	maxKeys   int
	count     int
	duration  string
	help      bool
	intervalD time.Duration
	durationD time.Duration
}

// runDrops is `skbtrail drops ARGS`.
func runDrops(args []string, stdout, stderr io.Writer) error {
	var fl dropsFlags
	fs := newFlagSet("skbtrail drops", &fl.f)
	fs.StringVarP(&fl.interval, "interval", "i", "1s", "")
	fs.IntVar(&fl.top, "top", 20, "")
	fs.BoolVar(&fl.stack, "stack", false, "")
	fs.BoolVar(&fl.jsonOut, "json", false, "")
	fs.StringVar(&fl.metrics, "metrics", "", "")
	fs.IntVar(&fl.maxKeys, "max-keys", 4096, "")
	fs.IntVarP(&fl.count, "count", "c", 0, "")
	fs.StringVar(&fl.duration, "duration", "", "")
	fs.BoolVarP(&fl.help, "help", "h", false, "")
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("drops: %v (see 'skbtrail drops --help')", err)}
	}
	if fl.help {
		fmt.Fprint(stdout, dropsUsage)
		return nil
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("drops: unexpected argument %q (see 'skbtrail drops --help')", fs.Arg(0))}
	}
	d, err := time.ParseDuration(fl.interval)
	if err != nil || d < 10*time.Millisecond {
		return usageError{fmt.Errorf("--interval %q: give a duration of at least 10ms, such as 1s or 500ms", fl.interval)}
	}
	fl.intervalD = d
	if fl.duration != "" {
		if fl.durationD, err = parseDuration(fl.duration); err != nil {
			return usageError{err}
		}
	}
	if fl.count < 0 {
		return usageError{fmt.Errorf("--count %d: give a number of intervals >= 1", fl.count)}
	}
	if fl.top < 0 {
		return usageError{fmt.Errorf("--top %d: give a number of rows >= 0 (0: all)", fl.top)}
	}
	if fl.maxKeys < 1 || fl.maxKeys > 1<<20 {
		return usageError{fmt.Errorf("--max-keys %d: give a number of keys from 1 to 1048576", fl.maxKeys)}
	}
	f, err := filter.Parse(fl.f)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("counting drops needs root (CAP_BPF and CAP_PERFMON): run it with sudo")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return countDrops(ctx, fl, f, stdout, stderr)
}

// countDrops attaches the drop counter and reports until ctx is done, the
// count of intervals is reached or the duration is over.
func countDrops(ctx context.Context, fl dropsFlags, f filter.Filter, stdout, stderr io.Writer) error {
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
				if len(r.All()) == 0 {
					n.warn = append(n.warn, "this kernel gives no drop reasons (kfree_skb has them from Linux 5.17): drops are counted by the function that dropped the packet")
				}
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
	var metrics *output.Metrics
	if fl.metrics != "" {
		// The metrics need the mode, known after attaching; listen first
		// anyway so that a busy address fails before anything is loaded.
		metrics = output.NewMetrics(probe.KfreeSkb, "", fl.maxKeys)
		s, err := output.ServeMetrics(fl.metrics, metrics.Handler())
		if err != nil {
			return usageError{fmt.Errorf("--metrics %q: %v", fl.metrics, err)}
		}
		srv = s
		defer srv.Close()
	}

	dr, err := probe.OpenDrops(probe.DropsOptions{Filter: f, Stack: fl.stack, MaxKeys: fl.maxKeys})
	if err != nil {
		return err
	}
	defer dr.Close()
	var namer drops.Namer
	if fl.stack {
		namer.Stack = dr.Stack
	}
	if metrics != nil {
		metrics.SetMode(string(dr.Mode))
	}
	start := time.Now()
	agg := drops.New(namer, start)
	namesReady := false

	var out output.DropsRenderer
	if fl.jsonOut {
		out = output.NewDropsJSON(stdout)
	} else {
		stackTop := 0
		if fl.stack {
			stackTop = 5
		}
		out = output.NewDropsText(stdout, fl.top, stackTop, isTerminal(stdout))
	}
	where := ""
	if fl.metrics != "" {
		where = ", metrics at http://" + fl.metrics + "/metrics"
	}
	fmt.Fprintf(stderr, "begin trace... (counting drops at skb:kfree_skb via %s, filter: %s, every %s%s; Ctrl-C to stop)\n",
		dr.Mode, f, fl.intervalD, where)

	var deadline <-chan time.Time
	if fl.durationD > 0 {
		t := time.NewTimer(fl.durationD)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(fl.intervalD)
	defer tick.Stop()

	var buf []probe.DropCount
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
			if metrics != nil {
				metrics.ReadError()
			}
			return fmt.Errorf("read drop counts: %w", err)
		}
		iv := agg.Update(time.Now(), buf, dr.Full())
		intervals++
		if metrics != nil {
			metrics.Update(agg.Totals(), iv)
		}
		// Make room when the map is filling up: forget keys idle for a
		// minute's worth of intervals.
		if iv.Keys > dr.MaxKeys*3/4 {
			idle := max(2, int(time.Minute/fl.intervalD))
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
			if fl.count > 0 && intervals >= fl.count {
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

// isTerminal says whether w is a terminal, where the table is redrawn in
// place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
