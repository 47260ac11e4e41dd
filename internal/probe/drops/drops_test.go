package drops

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/probe"
	"github.com/skbtrail/skbtrail/internal/testenv"
)

// TestDropsProgramsLoad loads the drop counter in its tp_btf and raw_tp
// form, with and without a filter and a stack, so that the verifier sees
// every path.
func TestDropsProgramsLoad(t *testing.T) {
	testenv.NeedRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	kspec, err := kernel.BTF()
	if err != nil {
		t.Fatal(err)
	}
	filters := map[string]filter.Filter{
		"none":     {},
		"netns":    {Netns: 4026531840},
		"all":      {Saddr: netip.MustParsePrefix("198.18.0.0/15"), Daddr: netip.MustParsePrefix("fd00::/8"), Addr: netip.MustParsePrefix("198.18.0.1/32"), Sport: 1, Dport: 2, Port: 3, Proto: 17, Netns: 4026531840, Dev: "veth0"},
		"headers6": {Daddr: netip.MustParsePrefix("fd00::/8"), Proto: 58},
	}
	spec, err := loadDrops()
	if err != nil {
		t.Fatal(err)
	}
	for fname, f := range filters {
		for _, stack := range []bool{false, true} {
			for name := range spec.Programs {
				t.Run(fname+"/"+name, func(t *testing.T) {
					cs := probe.Only(spec, map[string]bool{name: true})
					if err := cs.Variables["cfg"].Set(probe.KernelFilter(f)); err != nil {
						t.Fatal(err)
					}
					if stack {
						if err := cs.Variables["want_stack"].Set(uint8(1)); err != nil {
							t.Fatal(err)
						}
					}
					coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
						Programs: ebpf.ProgramOptions{KernelTypes: kspec},
					})
					if err != nil {
						var ve *ebpf.VerifierError
						if errors.As(err, &ve) {
							t.Fatalf("%+v", ve)
						}
						t.Fatal(err)
					}
					coll.Close()
				})
			}
		}
	}
}

// TestOpenDrops attaches the drop counter and reads its (possibly empty)
// map, the full counter and the stack map.
func TestOpenDrops(t *testing.T) {
	testenv.NeedRoot(t)
	d, err := Open(Options{Stack: true, MaxKeys: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Mode != probe.TpBtf && d.Mode != probe.RawTp {
		t.Errorf("mode %q", d.Mode)
	}
	if d.MaxKeys != 64 {
		t.Errorf("MaxKeys %d, want 64", d.MaxKeys)
	}
	if _, err := d.Read(nil); err != nil {
		t.Fatal(err)
	}
	_ = d.Full()
	if f, err := d.Stack(-1); err != nil || f != nil {
		t.Errorf("Stack(-1) = %v, %v", f, err)
	}
}

func TestDropKeyRoundTrip(t *testing.T) {
	for _, k := range []event.DropKey{
		{Location: 0xffffffff81000000, Reason: 2, Netns: 4026531840, Ifname: "veth-b", Stack: -1},
		{Ifname: "", Stack: 7},
		{Ifname: "fifteen-bytes-x", Stack: 0},
	} {
		if got := fromKernelKey(toKernelKey(k)); got != k {
			t.Errorf("round trip %+v = %+v", k, got)
		}
	}
}
