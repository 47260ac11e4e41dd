package diag

import (
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/track"
)

func ret(name string, v int32, table event.IPTable) ev {
	e := at(name, nsB, "", event.Packet{})
	e.Probe, e.Ret, e.Facts.Table = event.FuncReturn, v, table
	return e
}

// nf_hook_slow returning an error (with --ret) is a netfilter drop.
func TestNfHookSlowError(t *testing.T) {
	entry := at("nf_hook_slow", nsB, "vB", ping(ipA, ipB))
	a := Analyze(&track.Story{Skb: 0x10, Events: []ev{entry, ret("nf_hook_slow", -1, event.IPTable{})}}, Context{})
	if a.Worst() != Error || !findings(a, "dropped by a netfilter hook (nf_hook_slow returned -1)") {
		t.Errorf("worst %v, findings %+v", a.Worst(), a.Findings)
	}
	a = Analyze(&track.Story{Skb: 0x10, Events: []ev{entry, ret("nf_hook_slow", 1, event.IPTable{})}}, Context{})
	if a.Worst() != Info {
		t.Errorf("nf_hook_slow returning 1 (accept): worst %v, findings %+v", a.Worst(), a.Findings)
	}
}

// ipt_do_table's NF_DROP verdict names the table and chain.
func TestIptDoTableDrop(t *testing.T) {
	drop := ret("ipt_do_table", 0, event.IPTable{Name: "filter", Hook: event.HookForward, Verdict: event.VerdictDrop})
	a := Analyze(&track.Story{Skb: 0x10, Events: []ev{drop}}, Context{})
	if a.Worst() != Error || !findings(a, "dropped by iptables: table filter, chain FORWARD", "iptables-legacy -t filter -L FORWARD") {
		t.Fatalf("worst %v, findings %+v", a.Worst(), a.Findings)
	}
	if f := a.Findings[0]; f.Table != "filter" || f.Chain != "FORWARD" {
		t.Errorf("finding table %q chain %q, want filter FORWARD", f.Table, f.Chain)
	}
	accept := ret("ipt_do_table", 1, event.IPTable{Name: "filter", Hook: event.HookForward, Verdict: event.VerdictAccept})
	if a := Analyze(&track.Story{Skb: 0x10, Events: []ev{accept}}, Context{}); a.Worst() != Info {
		t.Errorf("NF_ACCEPT: worst %v, findings %+v", a.Worst(), a.Findings)
	}
}

func findings(a *Analysis, want ...string) bool {
	var all strings.Builder
	for _, f := range a.Findings {
		all.WriteString(f.Message + "\n" + f.Advice + "\n")
	}
	for _, w := range want {
		if !strings.Contains(all.String(), w) {
			return false
		}
	}
	return true
}
