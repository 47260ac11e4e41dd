// Package output renders events and packet stories for people (text) and
// programs (JSON lines).
package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/names"
	"github.com/skbtrail/skbtrail/internal/track"
)

// Namer names network namespaces for people (a *names.Resolver). It must
// be cheap: it is asked for every event shown.
type Namer interface {
	Who(inode uint32) names.Who
}

// who names a namespace; nil n knows nothing but the inode.
func who(n Namer, inode uint32) names.Who {
	if n == nil || inode == 0 {
		return names.Who{Inode: inode}
	}
	return n.Who(inode)
}

// Renderer writes events as they arrive (Event), whole stories (Story), or
// analysed stories (Analysis). Flush writes out anything buffered.
type Renderer interface {
	Event(e event.Event) error
	Story(s *track.Story) error
	Analysis(a *diag.Analysis) error
	Flush() error
}

// Text is the human-readable output: a block per packet (Story) or a line
// per event (Event). Detail adds CPU, process, netns and interface.
type Text struct {
	w      *bufio.Writer
	Detail bool
	Hooks  bool  // show the netfilter observers' events
	Names  Namer // names namespaces (pod, netns name, process); nil: inodes
}

// NewText returns a Text renderer writing to w.
func NewText(w io.Writer, detail bool) *Text {
	return &Text{w: bufio.NewWriter(w), Detail: detail}
}

const timeFormat = "15:04:05.000000"

// Event writes one line: time, skb, probe, packet, facts.
func (t *Text) Event(e event.Event) error {
	fmt.Fprintf(t.w, "%s %-18s ", e.Time.Format(timeFormat), skbString(e.Skb))
	t.line(e, 0)
	return t.w.Flush()
}

// Story writes a packet's block: a header naming the skb, a line per event,
// and how the story ended.
func (t *Text) Story(s *track.Story) error {
	t.story(s, nil)
	return t.w.Flush()
}

// story writes the block; with levels, each line starts with its level.
func (t *Text) story(s *track.Story, levels []diag.Level) {
	if s.Packet() && s.Parent != 0 {
		fmt.Fprintf(t.w, "*** skb %s (clone of %s)%s ***\n", skbString(s.Skb), skbString(s.Parent), t.where(s))
	} else if s.Packet() {
		fmt.Fprintf(t.w, "*** skb %s%s ***\n", skbString(s.Skb), t.where(s))
	} else {
		fmt.Fprintf(t.w, "*** %s (no skb) ***\n", s.Events[0].Name)
	}
	for i, e := range s.Events {
		if !visible(e, t.Hooks) {
			continue
		}
		fmt.Fprintf(t.w, "%s ", e.Time.Format(timeFormat))
		if levels != nil {
			fmt.Fprintf(t.w, "[%-5s] ", levels[i])
		}
		t.line(e, s.Skb)
	}
	if s.Packet() {
		fmt.Fprintf(t.w, "%s\n", Ending(s))
	}
	if levels == nil {
		t.w.WriteString("\n")
	}
}

// where names the namespaces a story passed, in order, when a Namer knows
// them: " from pod default/a to pod default/b".
func (t *Text) where(s *track.Story) string {
	if t.Names == nil {
		return ""
	}
	var seen []uint32
	for _, e := range s.Events {
		if e.Netns != 0 && (len(seen) == 0 || seen[len(seen)-1] != e.Netns) && visible(e, t.Hooks) {
			seen = append(seen, e.Netns)
		}
	}
	var parts []string
	named := map[string]bool{}
	for _, ino := range seen {
		w := who(t.Names, ino)
		if !w.Known() || named[w.String()] {
			continue
		}
		named[w.String()] = true
		parts = append(parts, w.String())
	}
	switch len(parts) {
	case 0:
		return ""
	case 1:
		return " in " + parts[0]
	}
	return " from " + parts[0] + " to " + strings.Join(parts[1:], " to ")
}

// line writes an event; in the story of skb owner, an event of another skb
// (a clone that joined it) says so.
func (t *Text) line(e event.Event, owner uint64) {
	fmt.Fprintf(t.w, "%-23s ", e.Name)
	if t.Detail {
		ifname := e.Ifname
		if ifname == "" {
			ifname = "-"
		}
		if t.Names != nil {
			fmt.Fprintf(t.w, "cpu %-2d %-16s %-24s %-15s ",
				e.CPU, fmt.Sprintf("%s/%d", e.Comm, e.PID), who(t.Names, e.Netns).String(), ifname)
		} else {
			fmt.Fprintf(t.w, "cpu %-2d %-16s ns %-10d %-15s ",
				e.CPU, fmt.Sprintf("%s/%d", e.Comm, e.PID), e.Netns, ifname)
		}
	}
	t.w.WriteString(e.Packet.String())
	if e.Reason != "" || e.Location != "" {
		fmt.Fprintf(t.w, "  reason %s at %s", orDash(e.Reason), orDash(e.Location))
	}
	for _, f := range e.Fields() {
		fmt.Fprintf(t.w, "  %s %v", f.Key, f.Value)
	}
	if owner != 0 && e.Skb != 0 && e.Skb != owner {
		fmt.Fprintf(t.w, "  (clone %s)", skbString(e.Skb))
	}
	t.w.WriteString("\n")
}

// Flush writes buffered output.
func (t *Text) Flush() error { return t.w.Flush() }

// Ending says in words how a packet's story ended.
func Ending(s *track.Story) string {
	first, last := s.Events[0], s.Events[len(s.Events)-1]
	took := time.Duration(last.Kernel - first.Kernel)
	switch {
	case s.Dropped:
		d, _ := s.Drop()
		where := ""
		if d.Location != "" {
			where = " in " + strings.SplitN(d.Location, "+", 2)[0]
		}
		reason := d.Reason
		if reason == "" {
			reason = "reason unknown"
		}
		return fmt.Sprintf("=> dropped%s (%s) after %s", where, reason, fmtDur(took))
	case s.Ended:
		return fmt.Sprintf("=> freed after use (consume_skb) after %s", fmtDur(took))
	default:
		return fmt.Sprintf("=> still in flight when last seen at %s, after %s", last.Name, fmtDur(took))
	}
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func skbString(skb uint64) string {
	if skb == 0 {
		return "-"
	}
	return fmt.Sprintf("0x%x", skb)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// visible reports whether an event is shown: the netfilter observers'
// events (many per packet) only serve the diagnosis, unless hooks.
func visible(e event.Event, hooks bool) bool {
	return hooks || e.Probe != event.NFObserve
}

// JSON writes one JSON object per line (see the README for the fields).
type JSON struct {
	w     *bufio.Writer
	Hooks bool  // write the netfilter observers' events
	Names Namer // adds netns_name, pod, pod_namespace, container; nil: not
}

// NewJSON returns a JSON renderer writing to w.
func NewJSON(w io.Writer) *JSON { return &JSON{w: bufio.NewWriter(w)} }

// Event writes one event object.
func (j *JSON) Event(e event.Event) error {
	if err := j.write(e); err != nil {
		return err
	}
	return j.w.Flush()
}

// Story writes the story's events in order, one object each.
func (j *JSON) Story(s *track.Story) error {
	for _, e := range s.Events {
		if !visible(e, j.Hooks) {
			continue
		}
		if err := j.write(e); err != nil {
			return err
		}
	}
	return j.w.Flush()
}

// Flush writes buffered output.
func (j *JSON) Flush() error { return j.w.Flush() }

// Loss is a {"type":"loss"} record: events lost while tracing (the ring
// buffer was full) and events the probes did not write (over
// --rate-limit), in the last Interval seconds and in all.
type Loss struct {
	Type         string  `json:"type"` // "loss"
	Lost         uint64  `json:"lost"`
	Limited      uint64  `json:"rate_limited"`
	LostTotal    uint64  `json:"lost_total"`
	LimitedTotal uint64  `json:"rate_limited_total"`
	Interval     float64 `json:"interval_s"`
}

// Loss writes a loss record and flushes, so that it is seen while tracing.
func (j *JSON) Loss(l Loss) error {
	l.Type = "loss"
	if err := j.writeValue(l); err != nil {
		return err
	}
	return j.w.Flush()
}

func (j *JSON) write(e event.Event) error {
	o := Record(e)
	if j.Names != nil {
		o = WithNames(o, who(j.Names, e.Netns))
	}
	return j.writeValue(o)
}

// WithNames adds what is known of an event's namespace after its "netns"
// field: netns_name (under /run/netns), pod, pod_namespace, container
// ("" when unknown).
func WithNames(o ordered, w names.Who) ordered {
	add := ordered{{"netns_name", w.NetnsName}, {"pod", w.Pod}, {"pod_namespace", w.PodNamespace}, {"container", w.Container}}
	for i, f := range o {
		if f.k == "netns" {
			out := append(ordered{}, o[:i+1]...)
			out = append(out, add...)
			return append(out, o[i+1:]...)
		}
	}
	return append(o, add...)
}

func (j *JSON) writeValue(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.w.Write(b)
	return j.w.WriteByte('\n')
}

// Record returns the JSON object of an event as an ordered list of fields.
func Record(e event.Event) ordered {
	p := e.Packet
	o := ordered{
		{"type", "event"},
		{"time", e.Time.Format(time.RFC3339Nano)},
		{"probe", e.Name},
		{"group", e.Group},
		{"skb", skbString(e.Skb)},
		{"cpu", e.CPU},
		{"pid", e.PID},
		{"comm", e.Comm},
		{"netns", e.Netns},
		{"ifindex", e.Ifindex},
		{"ifname", e.Ifname},
		{"len", e.Len},
		{"mark", e.Mark},
	}
	family := ""
	switch p.Family {
	case 4:
		family = "ipv4"
	case 6:
		family = "ipv6"
	}
	o = append(o, field{"family", family}, field{"proto", event.ProtoName(p.Proto)})
	addr := func(a interface{ IsValid() bool }) any {
		if !a.IsValid() {
			return ""
		}
		return a
	}
	o = append(o, field{"saddr", addr(p.Src)}, field{"daddr", addr(p.Dst)},
		field{"sport", p.Sport}, field{"dport", p.Dport})
	if p.Source == event.FromHeaders {
		o = append(o, field{"ttl", p.TTL}, field{"ip_len", p.IPLen})
	}
	switch proto := p.Proto; {
	case p.Source != event.FromHeaders:
	case proto == 6:
		o = append(o, field{"tcp_flags", event.Flags(p.TCPFlags)}, field{"tcp_seq", p.Seq}, field{"tcp_ack", p.Ack})
	case proto == 1 || proto == 58:
		o = append(o, field{"icmp_type", p.ICMPType}, field{"icmp_code", p.ICMPCode},
			field{"icmp_id", p.ICMPID}, field{"icmp_seq", p.ICMPSeq})
	}
	if p.Source != event.FromHeaders && p.Source != "" {
		o = append(o, field{"source", p.Source})
	}
	if e.Reason != "" || e.Location != "" {
		o = append(o, field{"reason", e.Reason}, field{"reason_code", e.ReasonCode}, field{"location", e.Location})
	}
	for _, f := range e.Fields() {
		o = append(o, field{f.Key, f.Value})
	}
	return o
}

type field struct {
	k string
	v any
}

// ordered is a JSON object that keeps its keys in order.
type ordered []field

// MarshalJSON writes the fields in order.
func (o ordered) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.k)
		v, err := json.Marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}
