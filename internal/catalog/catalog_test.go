package catalog

import (
	"slices"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

func TestSelect(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // first names, in catalog order
		n       int      // tracepoints (functions: see TestSelectFunctions)
		wantErr string
	}{
		{in: "", n: len(Tracepoints)},
		{in: "all", n: len(Tracepoints)},
		{in: "life", want: []string{"kfree_skb", "consume_skb"}, n: 2},
		{in: "kfree_skb, link", want: []string{"napi_gro_receive_entry"}, n: 7},
		{in: "tcp_send_reset", want: []string{"tcp_send_reset"}, n: 1},
		{in: "nosuch", wantErr: `no tracer, function or group "nosuch"`},
		{in: "link,nosuch", wantErr: `no tracer, function or group "nosuch"`},
		{in: ",", wantErr: "selects no tracer"},
	}
	for _, tc := range tests {
		got, err := Select(tc.in)
		got = slices.DeleteFunc(got, func(t Tracer) bool { return t.Func })
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Select(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != tc.n {
			t.Errorf("Select(%q) = %d tracers, %v; want %d", tc.in, len(got), err, tc.n)
			continue
		}
		for i, w := range tc.want {
			if got[i].Name != w {
				t.Errorf("Select(%q)[%d] = %s, want %s", tc.in, i, got[i].Name, w)
			}
		}
	}
}

func TestSelectFunctions(t *testing.T) {
	names := func(ts []Tracer) (tps, fns []string) {
		for _, t := range ts {
			if t.Func {
				fns = append(fns, t.Name)
			} else {
				tps = append(tps, t.Name)
			}
		}
		return
	}
	def, err := Select("")
	if err != nil {
		t.Fatal(err)
	}
	if _, fns := names(def); len(fns) != 0 {
		t.Errorf("default selection has functions: %v", fns)
	}
	sel, err := Select("ip_rcv,kfree_skb")
	if err != nil {
		t.Fatal(err)
	}
	if tps, fns := names(sel); !slices.Equal(tps, []string{"kfree_skb"}) || !slices.Equal(fns, []string{"ip_rcv"}) {
		t.Errorf("-t ip_rcv,kfree_skb: tracepoints %v, functions %v", tps, fns)
	}
	sel, err = Select("ip")
	if err != nil {
		t.Fatal(err)
	}
	tps, fns := names(sel)
	if !slices.Contains(tps, "fib_table_lookup") || !slices.Contains(fns, "ip_rcv") || !slices.Contains(fns, "ip_forward") {
		t.Errorf("-t ip: tracepoints %v, functions %v", tps, fns)
	}
	sel, err = Select("all")
	if err != nil {
		t.Fatal(err)
	}
	tps, fns = names(sel)
	if len(tps) != len(Tracepoints) || len(fns) != len(Functions)+1 || fns[len(fns)-1] != AllFunctions {
		t.Errorf("-t all: %d tracepoints, %d functions (last %q)", len(tps), len(fns), fns[len(fns)-1])
	}
	if _, err := Select("no_such_function"); err == nil {
		t.Error("unknown name accepted")
	}
}

func TestFunctionCatalog(t *testing.T) {
	if n := len(Functions); n < 90 {
		t.Errorf("%d catalog functions, want about a hundred", n)
	}
	groups := map[string]bool{}
	for _, g := range Groups {
		groups[g.Name] = true
	}
	seen := map[string]bool{}
	for _, f := range Functions {
		if !groups[f.Group] {
			t.Errorf("%s: group %q not in Groups", f.Name, f.Group)
		}
		if seen[f.Name] {
			t.Errorf("%s listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	if FuncByName("skb_clone").Kind != Clone || FuncByName("ipt_do_table").Kind != Ipt {
		t.Error("clone and ipt functions lack their kind")
	}
	if f := FuncByName("__netif_receive_skb_core.constprop.0"); f == nil || f.Name != "__netif_receive_skb_core" {
		t.Errorf("suffixed name not resolved: %v", f)
	}
}

// TestTracepointsNamed: every tracepoint's name is its probe id's, ids are
// unique, and ByProbe finds each.
func TestTracepointsNamed(t *testing.T) {
	seen := map[event.Probe]bool{}
	for _, tr := range Tracepoints {
		if seen[tr.Probe] || tr.Probe == 0 {
			t.Errorf("%s: id %d is zero or used twice", tr.Name, tr.Probe)
		}
		seen[tr.Probe] = true
		if tr.Probe.String() != tr.Name {
			t.Errorf("%s: probe id %d is named %q", tr.Name, tr.Probe, tr.Probe)
		}
		if b := ByProbe(tr.Probe); b == nil || b.Name != tr.Name {
			t.Errorf("ByProbe(%d) does not find %s", tr.Probe, tr.Name)
		}
	}
	if len(seen) != len(event.Tracepoints()) {
		t.Errorf("catalog has %d tracepoints, the vocabulary %d", len(seen), len(event.Tracepoints()))
	}
}
