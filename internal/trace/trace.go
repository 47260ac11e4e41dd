// Package trace runs a tracing session end to end: it opens the probes,
// decodes their records, assembles packet stories and renders them, until a
// packet count, a duration or the caller stops it.
package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/decode"
	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/diagnose"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/limits"
	"github.com/skbtrail/skbtrail/internal/output"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/privs"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Config says what to trace and how to show it.
type Config struct {
	Filter   filter.Filter
	Tracers  []catalog.Tracer
	Out      output.Renderer
	Log      io.Writer     // progress and warnings (stderr)
	Basic    bool          // render each event as it arrives, not whole stories
	Count    int           // stop after this many packets; 0: no limit
	Duration time.Duration // stop after this long; 0: no limit
	RingSize int           // ring buffer bytes; 0: default
	// RateLimit caps the events the probes write per second (--rate-limit);
	// 0: no cap. Events over it are counted and reported.
	RateLimit uint32
	Diag      diagnose.Options // --diag and its options
	Ret       bool             // function probes: show return values (--ret)

	// Expr is a filter expression (tcpdump syntax) and ExprProg its
	// translation (pcapfilter.Translate), checked with Filter in the kernel.
	Expr     string
	ExprProg asm.Instructions
	// ExprBPF is Expr compiled (pcapfilter.Compile): it decides the route
	// lookups, which have no packet for the kernel to filter.
	ExprBPF []bpf.RawInstruction
	// Pcap, when set, gets every event's packet (--pcap); Snaplen bytes
	// of each are copied in the kernel.
	Pcap    *output.Pcap
	Snaplen uint32

	// Privs, when set, is carried out once everything is attached and
	// every socket is open: capabilities the rest of the run does not
	// use are dropped, and the run goes on as Privs.User if given.
	Privs *privs.Plan
	// Notice, when set, is said once on Log when tracing begins (that no
	// runtime names pods).
	Notice string
}

// Stats is what a session counted.
type Stats struct {
	Events  uint64
	Packets int
	Lost    uint64 // events the kernel could not hand over (ring buffer full)
	Limited uint64 // events the probes did not write: over --rate-limit
	Errors  uint64 // records that could not be decoded
}

// poll bounds how long a read blocks, so stories expire and the context is
// noticed while no event arrives.
const poll = 100 * time.Millisecond

// Run traces until ctx is done, cfg.Count packets were shown or
// cfg.Duration passed. Pending output is written before it returns.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	var st Stats
	reasons, err := loadReasons()
	if err != nil {
		fmt.Fprintf(cfg.Log, "skbtrail: warning: %v: drop reasons are shown as numbers\n", err)
	}
	// kallsyms takes a while to read: do it while the probes load.
	symc := make(chan *kernel.Symbols, 1)
	go func() {
		syms, err := kernel.LoadSymbols()
		if err != nil {
			fmt.Fprintf(cfg.Log, "skbtrail: warning: %v: drop locations are shown as addresses\n", err)
			syms = nil
		}
		symc <- syms
	}()
	sess, err := probe.Open(probe.Options{Filter: cfg.Filter, Tracers: cfg.Tracers, RingSize: cfg.RingSize,
		Expr: cfg.ExprProg, Snaplen: cfg.Snaplen, RateLimit: cfg.RateLimit})
	if err != nil {
		return st, err
	}
	defer sess.Close()
	funcs, err := openFunctions(sess, cfg.Tracers, cfg.Ret)
	if err != nil {
		return st, err
	}
	if len(sess.Skipped) > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d tracer(s) unavailable here, skipped:", len(sess.Skipped))
		for _, s := range sess.Skipped {
			fmt.Fprintf(cfg.Log, " %s (%s);", s.Tracer.Name, s.Why)
		}
		fmt.Fprintln(cfg.Log)
	}
	reportFuncs(cfg.Log, funcs)
	if reasons != nil && len(reasons.All()) == 0 && slices.ContainsFunc(sess.Attached, func(s probe.Status) bool { return s.Tracer.Probe == event.KfreeSkb }) {
		fmt.Fprintln(cfg.Log, "skbtrail: this kernel gives no drop reasons (kfree_skb has them from Linux 5.17): drops are explained by the function that dropped the packet")
	}
	r := &runner{cfg: cfg, dec: decode.New(reasons, <-symc), tr: &track.Tracker{}}
	r.dec.Funcs = funcs.Names
	if cfg.Diag.Enabled {
		r.diag, err = diagnose.New(ctx, cfg.Filter, cfg.Diag, cfg.Log, sess)
		if err != nil {
			return st, err
		}
		defer r.diag.Close()
	}
	if err := enterPrivs(cfg.Privs, cfg.Log); err != nil {
		return st, err
	}
	shown := cfg.Filter.String()
	if cfg.Expr != "" {
		if cfg.Filter.Empty() {
			shown = fmt.Sprintf("%q", cfg.Expr)
		} else {
			shown += fmt.Sprintf(" and %q", cfg.Expr)
		}
	}
	if cfg.Notice != "" {
		fmt.Fprintf(cfg.Log, "skbtrail: %s\n", cfg.Notice)
	}
	fmt.Fprintf(cfg.Log, "begin trace... (%s, filter: %s; Ctrl-C to stop)\n", probesLine(sess, funcs), shown)

	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	limits.Warn(cfg.Log)
	defer limits.Warn(nil)
	var rec ringbuf.Record
	lastExpire := time.Now()
	loss := &lossReport{every: lossEvery, next: time.Now().Add(lossEvery)}
	for !r.done {
		loss.check(cfg, sess, time.Now())
		if ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
		next := time.Now().Add(poll)
		if !deadline.IsZero() && deadline.Before(next) {
			next = deadline
		}
		sess.SetDeadline(next)
		err := sess.Read(&rec)
		switch {
		case err == nil:
			r.handle(rec.RawSample)
			// Under a steady flood the read never times out: expire
			// idle stories anyway, or they would pile up.
			if time.Since(lastExpire) > poll {
				r.emit(r.tr.Expire(monotonic()))
				lastExpire = time.Now()
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
			r.emit(r.tr.Expire(monotonic()))
			lastExpire = time.Now()
		case errors.Is(err, ringbuf.ErrClosed):
			r.done = true
		default:
			return r.st, fmt.Errorf("read events: %w", err)
		}
		r.drain(false)
	}

	// Stop the probes, then hand out what they already wrote.
	sess.Detach()
	if !r.done {
		sess.SetDeadline(time.Now())
		for !r.done && sess.Read(&rec) == nil {
			r.handle(rec.RawSample)
		}
		if !r.done {
			r.emit(r.tr.Flush())
		}
	}
	r.drain(true)
	if cfg.Pcap != nil {
		if err := cfg.Pcap.Flush(); err != nil && r.pcapErr == nil {
			r.pcapErr = err
		}
	}
	st = r.st
	st.Lost = sess.Lost()
	st.Limited = sess.Limited()
	if st.Limited > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d events not written: over --rate-limit %d per second\n", st.Limited, cfg.RateLimit)
	}
	if st.Packets == 0 && (!cfg.Filter.Empty() || cfg.Expr != "") {
		// Nothing shown: say whether packets came by at all.
		seen, _ := sess.Looked()
		fmt.Fprintf(cfg.Log, "skbtrail: saw %s packets, none matched %s\n", thousands(seen), shown)
	}
	if st.Lost > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d events lost: the ring buffer was full (try a narrower filter or --buffer-size)\n", st.Lost)
	}
	if st.Errors > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d events could not be decoded\n", st.Errors)
	}
	limits.Report(cfg.Log)
	if err := cfg.Out.Flush(); err != nil {
		return st, err
	}
	if r.pcapErr != nil {
		return st, fmt.Errorf("write the capture (--pcap): %w", r.pcapErr)
	}
	return st, nil
}

// enterPrivs carries out plan (nil: nothing). Where capabilities cannot be
// dropped on every thread (a cgo build) that is a warning, unless a user
// was asked for.
func enterPrivs(plan *privs.Plan, log io.Writer) error {
	if plan == nil {
		return nil
	}
	if _, err := plan.Enter(); err != nil {
		if errors.Is(err, privs.ErrAllThreads) && plan.User == "" {
			fmt.Fprintf(log, "skbtrail: warning: capabilities not dropped: %v\n", err)
			return nil
		}
		return fmt.Errorf("drop privileges: %w", err)
	}
	return nil
}

// lossEvery is how often, at most, losses are reported while tracing.
const lossEvery = 5 * time.Second

// counts is what lossReport reads from the session.
type counts interface {
	Lost() uint64
	Limited() uint64
}

// lossReport says, while tracing, when events were lost (ring buffer full)
// or not written (over --rate-limit) since the last time: one stderr line
// at most every `every`, and with --json a {"type":"loss",...} record.
type lossReport struct {
	every         time.Duration
	next          time.Time
	lost, limited uint64 // totals reported so far
}

func (l *lossReport) check(cfg Config, sess counts, now time.Time) {
	if now.Before(l.next) {
		return
	}
	l.next = now.Add(l.every)
	lost, limited := sess.Lost(), sess.Limited()
	dl, dr := lost-l.lost, limited-l.limited
	if dl == 0 && dr == 0 {
		return
	}
	l.lost, l.limited = lost, limited
	fmt.Fprintf(cfg.Log, "skbtrail: in the last %v: %d events lost (ring buffer full), %d over --rate-limit; in all %d and %d\n",
		l.every, dl, dr, lost, limited)
	if j, ok := cfg.Out.(interface{ Loss(output.Loss) error }); ok {
		j.Loss(output.Loss{Lost: dl, Limited: dr, LostTotal: lost, LimitedTotal: limited, Interval: l.every.Seconds()})
	}
}

// thousands writes n with commas: 1,204.
func thousands(n uint64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func loadReasons() (*kernel.Reasons, error) {
	spec, err := kernel.BTF()
	if err != nil {
		return nil, err
	}
	return kernel.LoadReasons(spec)
}

func monotonic() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// runner is one tracing session's state between the ring buffer and the
// output.
type runner struct {
	cfg  Config
	dec  *decode.Decoder
	tr   *track.Tracker
	diag *diagnose.Diagnoser // nil without --diag
	st   Stats
	done bool // stop: count reached, or the output failed

	pcapErr error // writing the capture failed
}

func (r *runner) handle(raw []byte) {
	e, err := r.dec.Decode(raw)
	if err != nil {
		r.st.Errors++
		return
	}
	if p := e.Packet; len(r.cfg.ExprBPF) > 0 && e.Probe == event.FibTableLookup && p.Source == event.FromFlow &&
		!pcapfilter.MatchFlow(r.cfg.ExprBPF, pcapfilter.Flow{Family: p.Family, Proto: p.Proto, Src: p.Src, Dst: p.Dst, Sport: p.Sport, Dport: p.Dport}) {
		return // the expression rejects this lookup's flow
	}
	r.st.Events++
	if r.cfg.Pcap != nil && r.pcapErr == nil {
		if err := r.cfg.Pcap.Write(e); err != nil {
			r.pcapErr = err
			r.done = true
		}
	}
	stories := r.tr.Add(e)
	// Route lookups show only once a traced packet claims them (see
	// track.Tracker); without --basic the stories show them.
	claimed := r.tr.Claimed()
	if r.cfg.Basic {
		for _, c := range claimed {
			r.check(r.cfg.Out.Event(c))
		}
		if e.Skb != 0 || (e.Probe != event.FibTableLookup && e.Probe != event.Fib6TableLookup) {
			r.check(r.cfg.Out.Event(e))
		}
	}
	r.emit(stories)
}

// emit shows finished stories, or queues them for the diagnosis.
func (r *runner) emit(stories []*track.Story) {
	for _, s := range stories {
		if r.done {
			return
		}
		if r.diag != nil {
			r.diag.Add(s)
			continue
		}
		if !r.cfg.Basic {
			r.check(r.cfg.Out.Story(s))
		}
		r.counted(s)
	}
}

// drain analyses the queued stories that are ready (all with force).
func (r *runner) drain(force bool) {
	if r.diag == nil {
		return
	}
	for _, a := range r.diag.Ready(force) {
		if r.done {
			return
		}
		if r.cfg.Diag.Quiet && a.Worst() == diag.Info {
			continue
		}
		r.check(r.cfg.Out.Analysis(a))
		r.counted(a.Story)
		if a.Worst() == diag.Error && !r.cfg.Diag.Keep {
			r.done = true
		}
	}
}

func (r *runner) counted(s *track.Story) {
	if s.Packet() {
		r.st.Packets++
	}
	if r.cfg.Count > 0 && r.st.Packets >= r.cfg.Count {
		r.done = true
	}
}

func (r *runner) check(err error) {
	if err != nil {
		r.done = true
	}
}
