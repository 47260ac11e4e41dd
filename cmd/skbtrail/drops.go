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

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/monitor"
)

// dropsHelp is the fixed text of 'skbtrail drops --help'; the flags'
// entries are rendered from their definitions (dropsFlagSet, newFlagSet).
var dropsHelp = helpDoc{
	intro: `skbtrail drops counts every packet the kernel drops, by drop reason,
dropping function, network namespace and device. The counting happens in
the kernel (no event per packet), so it is cheap enough to leave running.

Usage:
  skbtrail drops [flags]

`,
	sections: []helpSection{
		{group: groupFilter, heading: "Filter (the same as tracing; checked in the kernel on the dropped packet):"},
		{group: groupOutput, heading: "Output:"},
		{group: groupRunning, heading: "Running:"},
	},
	outro: `At exit (count, duration, Ctrl-C or SIGTERM) the last, partial interval is
reported too, and the text output ends with the totals of the run.
Exit status: 0 when stopped; 1 when counting failed; 2 for bad input.

Examples:
  skbtrail drops                                  every drop on the host
  skbtrail drops -p tcp --netns blue --stack      TCP drops in netns blue
  skbtrail drops --metrics :9464 --interval 15s   a Prometheus exporter
`,
}

type dropsFlags struct {
	f         filter.Options
	ns        nsFlags
	labels    string
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
	fs := dropsFlagSet(&fl)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("drops: %v (see 'skbtrail drops --help')", err)}
	}
	if fl.help {
		fmt.Fprint(stdout, helpText(fs, dropsHelp))
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
	switch fl.labels {
	case "", "pod":
	default:
		return usageError{fmt.Errorf("--metrics-labels %q: the only extra labels are: pod", fl.labels)}
	}
	if fl.labels != "" && fl.metrics == "" {
		return usageError{fmt.Errorf("--metrics-labels goes with --metrics ADDR")}
	}
	if err := fl.ns.check(fl.f); err != nil {
		return err
	}
	f, err := filter.Parse(fl.f)
	if err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("counting drops needs root (CAP_BPF and CAP_PERFMON): run it with sudo")
	}
	o := fl.f
	res, err := fl.ns.resolve(context.Background(), &o)
	if err != nil {
		return err
	}
	defer res.Close()
	if o.Netns != fl.f.Netns {
		if f, err = filter.Parse(o); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = monitor.Run(ctx, monitor.Config{
		Filter: f, Interval: fl.intervalD, Top: fl.top, Stack: fl.stack, JSON: fl.jsonOut,
		Metrics: fl.metrics, MaxKeys: fl.maxKeys, Count: fl.count, Duration: fl.durationD,
		Out: stdout, Log: stderr, Terminal: isTerminal(stdout),
		Names: res, PodLabels: fl.labels == "pod", Notice: res.Notice(),
	})
	var bad *monitor.BadMetricsAddr
	if errors.As(err, &bad) {
		return usageError{err}
	}
	return err
}

// dropsFlagSet returns the flag set of drops, bound to fl.
func dropsFlagSet(fl *dropsFlags) *pflag.FlagSet {
	fs := newFlagSet("skbtrail drops", &fl.f, &fl.ns)
	redescribe(fs, "netns", "only drops in this network namespace "+
		"(name under /run/netns, path, or inode number)")
	redescribe(fs, "dev", "only drops of packets on this interface")
	g := flagGroup{fs, groupOutput}
	g.String(&fl.interval, "interval", "i", "1s", "D", "report every D (default 1s)")
	g.Int(&fl.top, "top", "", 20, "N", "rows per report (default 20; 0: all)")
	g.Bool(&fl.stack, "stack", "", "show the kernel stack of the top 5 drops")
	g.Bool(&fl.jsonOut, "json", "", `JSON lines: per interval one "drop" record `+
		`per (reason, location, netns, ifname) with count = drops in the interval, `+
		`then one "interval" record`)
	g.String(&fl.metrics, "metrics", "", "", "ADDR", "serve Prometheus metrics at http://ADDR/metrics "+
		"(e.g. :9464): skbtrail_drops_total{reason,location,netns,device} and skbtrail's own health")
	g.String(&fl.labels, "metrics-labels", "", "", "pod", "add the labels pod and pod_namespace to "+
		"skbtrail_drops_total (from the netns label, so no more series: at most --max-keys)")
	g.Int(&fl.maxKeys, "max-keys", "", 4096, "N", "keys the kernel counts (default 4096); "+
		"drops of further keys are reported as not counted")
	g = flagGroup{fs, groupRunning}
	g.Int(&fl.count, "count", "c", 0, "N", "stop after N intervals")
	g.String(&fl.duration, "duration", "", "", "D", durationHelp)
	g.Bool(&fl.help, "help", "h", helpHelp)
	return fs
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
