package trace

import (
	"context"
	"fmt"
	"time"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/host"
	"github.com/skbtrail/skbtrail/internal/netns"
	"github.com/skbtrail/skbtrail/internal/track"
)

// settle is how long a finished story waits before it is analysed, so that
// what arrives on other channels (the rule trace) can join it.
const settle = 150 * time.Millisecond

// diagnoser gathers what the analysis needs besides the story, and
// analyses stories once they settled.
type diagnoser struct {
	ctx   diag.Context
	queue []queued
	names map[uint32]string
}

type queued struct {
	s     *track.Story
	ready time.Time
}

func newDiagnoser(ctx context.Context, cfg Config) (*diagnoser, error) {
	d := &diagnoser{names: netns.Names()}
	d.ctx.Host = host.Host{}
	d.ctx.Netns = d.nsName
	return d, nil
}

// nsName names a namespace for messages: "4026532281 (blue)".
func (d *diagnoser) nsName(inode uint32) string {
	name, ok := d.names[inode]
	if !ok {
		d.names = netns.Names() // it may be new
		name, ok = d.names[inode]
	}
	if ok {
		return fmt.Sprintf("%d (%s)", inode, name)
	}
	return fmt.Sprint(inode)
}

func (d *diagnoser) add(s *track.Story) {
	d.queue = append(d.queue, queued{s, time.Now().Add(settle)})
}

// ready analyses the stories that settled (all of them with force).
func (d *diagnoser) ready(force bool) []*diag.Analysis {
	now := time.Now()
	var out []*diag.Analysis
	n := 0
	for _, q := range d.queue {
		if !force && now.Before(q.ready) {
			break
		}
		out = append(out, diag.Analyze(q.s, d.ctx))
		n++
	}
	d.queue = d.queue[n:]
	return out
}

// Close releases what the diagnoser holds.
func (d *diagnoser) Close() error { return nil }
