package output

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/diag"
)

// Analysis writes the story with each event's level, then the analysis
// result: numbered findings, worst first, each with where, what and what
// to do.
func (t *Text) Analysis(a *diag.Analysis) error {
	t.story(a.Story, a.Levels)
	fmt.Fprintln(t.w, "---------------------------- ANALYSIS RESULT ----------------------------")
	if len(a.Findings) == 0 {
		fmt.Fprintln(t.w, "no problem found")
	}
	for i, f := range a.Findings {
		where := "packet"
		if f.Probe != "" {
			where = f.Group + "/" + f.Probe
		}
		if w := who(t.Names, f.Netns); w.Known() {
			where += " in " + w.Short()
		}
		fmt.Fprintf(t.w, "[%d] %-5s (%s) %s\n", i+1, f.Level, where, f.Message)
		if f.Location != "" {
			fmt.Fprintf(t.w, "    location: %s\n", f.Location)
		}
		if f.Reason != "" {
			fmt.Fprintf(t.w, "    reason:   %s\n", f.Reason)
		}
		if f.Table != "" {
			fmt.Fprintf(t.w, "    netfilter: %s\n", nfWhere(f))
		}
		for _, d := range f.Details {
			fmt.Fprintf(t.w, "    - %s\n", d)
		}
		if f.Advice != "" {
			fmt.Fprintf(t.w, "    advice:   %s\n", f.Advice)
		}
	}
	t.w.WriteString("\n")
	return t.w.Flush()
}

func nfWhere(f diag.Finding) string {
	parts := []string{}
	if f.Hook != "" {
		parts = append(parts, "hook "+f.Hook)
	}
	if f.Blamed != "" {
		parts = append(parts, "hook function "+f.Blamed)
	}
	parts = append(parts, fmt.Sprintf("table %s %s", f.Family, f.Table))
	if f.Chain != "" {
		parts = append(parts, "chain "+f.Chain)
	}
	if f.Rule != "" {
		parts = append(parts, "rule "+f.Rule)
	}
	return strings.Join(parts, ", ")
}

// Analysis writes the story's events, each with its "level", then one
// {"type":"analysis"} record with the findings.
func (j *JSON) Analysis(a *diag.Analysis) error {
	for i, e := range a.Story.Events {
		if !visible(e, j.Hooks) {
			continue
		}
		r := Record(e)
		if j.Names != nil {
			r = WithNames(r, who(j.Names, e.Netns))
		}
		r = append(r, field{"level", a.Levels[i]})
		if err := j.writeValue(r); err != nil {
			return err
		}
	}
	findings := make([]ordered, 0, len(a.Findings))
	for _, f := range a.Findings {
		o := ordered{{"level", f.Level}, {"message", f.Message}, {"advice", f.Advice}}
		if f.Probe != "" {
			o = append(o, field{"probe", f.Probe}, field{"group", f.Group})
		}
		for _, kv := range []field{{"reason", f.Reason}, {"location", f.Location}, {"hook", f.Hook},
			{"family", f.Family}, {"table", f.Table}, {"chain", f.Chain}, {"rule", f.Rule}, {"blamed", f.Blamed}} {
			if kv.v != "" {
				o = append(o, kv)
			}
		}
		if f.Netns != 0 {
			o = append(o, field{"netns", f.Netns})
			if w := who(j.Names, f.Netns); w.Known() {
				o = append(o, field{"netns_name", w.NetnsName}, field{"pod", w.Pod}, field{"pod_namespace", w.PodNamespace},
					field{"container", w.Container})
			}
		}
		if len(f.Details) > 0 {
			o = append(o, field{"details", f.Details})
		}
		findings = append(findings, o)
	}
	rec := ordered{{"type", "analysis"}, {"skb", skbString(a.Story.Skb)}, {"level", a.Worst()}, {"findings", findings}}
	if err := j.writeValue(rec); err != nil {
		return err
	}
	return j.w.Flush()
}
