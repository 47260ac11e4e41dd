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
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/output"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Config says what to trace and how to show it.
type Config struct {
	Filter   filter.Filter
	Tracers  []probe.Tracer
	Out      output.Renderer
	Log      io.Writer     // progress and warnings (stderr)
	Basic    bool          // render each event as it arrives, not whole stories
	Count    int           // stop after this many packets; 0: no limit
	Duration time.Duration // stop after this long; 0: no limit
	RingSize int           // ring buffer bytes; 0: default
}

// Stats is what a session counted.
type Stats struct {
	Events  uint64
	Packets int
	Lost    uint64 // events the kernel could not hand over (ring buffer full)
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
	syms, err := kernel.LoadSymbols()
	if err != nil {
		fmt.Fprintf(cfg.Log, "skbtrail: warning: %v: drop locations are shown as addresses\n", err)
		syms = nil
	}
	sess, err := probe.Open(probe.Options{Filter: cfg.Filter, Tracers: cfg.Tracers, RingSize: cfg.RingSize})
	if err != nil {
		return st, err
	}
	defer sess.Close()
	if len(sess.Skipped) > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d tracer(s) unavailable here, skipped:", len(sess.Skipped))
		for _, s := range sess.Skipped {
			fmt.Fprintf(cfg.Log, " %s (%s);", s.Tracer.Name, s.Why)
		}
		fmt.Fprintln(cfg.Log)
	}
	fmt.Fprintf(cfg.Log, "begin trace... (%d tracepoints via %s, filter: %s; Ctrl-C to stop)\n",
		len(sess.Attached), sess.Attached[0].Mode, cfg.Filter)

	dec := event.NewDecoder(reasons, syms)
	tr := &track.Tracker{}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	var rec ringbuf.Record
	done := false

	emit := func(stories []*track.Story) {
		for _, s := range stories {
			if done {
				return
			}
			if s.Packet() {
				st.Packets++
			}
			if !cfg.Basic {
				if err := cfg.Out.Story(s); err != nil {
					done = true
				}
			}
			if cfg.Count > 0 && st.Packets >= cfg.Count {
				done = true
			}
		}
	}
	handle := func(raw []byte) {
		e, err := dec.Decode(raw)
		if err != nil {
			st.Errors++
			return
		}
		st.Events++
		stories := tr.Add(e)
		if cfg.Basic {
			// Route lookups show only once a traced packet
			// claims them (see track.Tracker).
			for _, c := range tr.Claimed {
				if err := cfg.Out.Event(c); err != nil {
					done = true
				}
			}
			if e.Skb != 0 || e.Probe != probe.FibTableLookup {
				if err := cfg.Out.Event(e); err != nil {
					done = true
				}
			}
		}
		tr.Claimed = tr.Claimed[:0]
		emit(stories)
	}

	for !done {
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
			handle(rec.RawSample)
		case errors.Is(err, os.ErrDeadlineExceeded):
			emit(tr.Expire(monotonic()))
		case errors.Is(err, ringbuf.ErrClosed):
			done = true
		default:
			return st, fmt.Errorf("read events: %w", err)
		}
	}

	// Stop the probes, then hand out what they already wrote.
	sess.Detach()
	if !done {
		sess.SetDeadline(time.Now())
		for !done && sess.Read(&rec) == nil {
			handle(rec.RawSample)
		}
		if !done {
			emit(tr.Flush())
		}
	}
	st.Lost = sess.Lost()
	if st.Lost > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d events lost: the ring buffer was full (try a narrower filter or --buffer-size)\n", st.Lost)
	}
	if st.Errors > 0 {
		fmt.Fprintf(cfg.Log, "skbtrail: %d events could not be decoded\n", st.Errors)
	}
	return st, cfg.Out.Flush()
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
