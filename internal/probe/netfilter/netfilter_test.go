package netfilter

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/testenv"
)

// TestExprInjected: the filter expression replaces the stub in the
// observer too, and the observer loads with it.
func TestExprInjected(t *testing.T) {
	prog, err := pcapfilter.Compile("udp and port 53")
	if err != nil {
		t.Fatal(err)
	}
	expr, err := pcapfilter.Translate(prog)
	if err != nil {
		t.Fatal(err)
	}
	nf, err := loadNetfilter()
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Setup(nf, probe.KernelFilter(filter.Filter{}), probe.Options{Expr: expr, Snaplen: 128}); err != nil {
		t.Fatal(err)
	}
	if !probe.Injected(nf.Programs["nf_observe"].Instructions, expr) {
		t.Errorf("nf_observe: the expression is not where the stub was")
	}
	testenv.NeedRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	if err := features.HaveProgramType(ebpf.Netfilter); err != nil {
		// 6.1: no netfilter programs (6.4+).
		t.Skipf("the expression is in place; loading nf_observe: this kernel has no netfilter programs: %v", err)
	}
	coll, err := ebpf.NewCollection(nf)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("%+v", ve)
		}
		t.Fatal(err)
	}
	coll.Close()
}
