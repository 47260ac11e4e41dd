package probe

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
	"github.com/skbtrail/skbtrail/internal/testenv"
)

// TestProgramsLoad loads every program of the object, in both its tp_btf
// and raw_tp form, with and without a filter, so that the verifier sees
// every path. A program the kernel lacks the tracepoint for is skipped.
func TestProgramsLoad(t *testing.T) {
	testenv.NeedRoot(t)
	if err := rlimit.RemoveMemlock(); err != nil {
		t.Fatal(err)
	}
	kspec, err := kernel.BTF()
	if err != nil {
		t.Fatal(err)
	}
	filters := map[string]filter.Filter{
		"none": {},
		"all fields": {
			Saddr: netip.MustParsePrefix("198.18.0.0/15"), Daddr: netip.MustParsePrefix("198.18.0.2/32"),
			Addr: netip.MustParsePrefix("198.18.0.1/32"), Sport: 1, Dport: 2, Port: 3, Proto: 6,
			Netns: 4026531840, Dev: "veth0",
		},
	}
	// A filter expression and --pcap's packet copy: the spliced program
	// and the bigger record must pass the verifier too.
	prog, err := pcapfilter.Compile("tcp and dst port 80 and net 198.18.0.0/15 or icmp6 or udp[8:2] = 7")
	if err != nil {
		t.Fatal(err)
	}
	expr, err := pcapfilter.Translate(prog)
	if err != nil {
		t.Fatal(err)
	}
	extras := map[string]Options{
		"":              {},
		"+expr":         {Expr: expr},
		"+expr+snaplen": {Expr: expr, Snaplen: 256},
		"+snaplen":      {Snaplen: MaxSnaplen},
		"+ratelimit":    {RateLimit: 1000},
	}
	for fname, f := range filters {
		for xname, x := range extras {
			spec, err := loadTracepoint()
			if err != nil {
				t.Fatal(err)
			}
			if err := Setup(spec, KernelFilter(f), x); err != nil {
				t.Fatal(err)
			}
			if err := tracepointArgs(spec, kspec); err != nil {
				t.Fatal(err)
			}
			fname := fname + xname
			for name := range spec.Programs {
				tp := strings.TrimPrefix(strings.TrimPrefix(name, "tp_btf_"), "raw_tp_")
				if !kernel.HasTracepoint(kspec, tp) {
					continue
				}
				t.Run(fname+"/"+name, func(t *testing.T) {
					cs := Only(spec, map[string]bool{name: true})
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

func TestCatalogMatchesObject(t *testing.T) {
	spec, err := loadTracepoint()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range catalog.Tracepoints {
		for _, mode := range []Mode{TpBtf, RawTp} {
			name := progName(Status{Tracer: tr, Mode: mode})
			p, ok := spec.Programs[name]
			if !ok {
				t.Errorf("%s: no program %s in the object", tr.Name, name)
				continue
			}
			if p.AttachTo != tr.Name {
				t.Errorf("%s: program %s attaches to %q", tr.Name, name, p.AttachTo)
			}
		}
	}
	if len(spec.Programs) != 2*len(catalog.Tracepoints) {
		t.Errorf("object has %d programs, catalog %d tracers (want two programs each)", len(spec.Programs), len(catalog.Tracepoints))
	}
}

func TestKernelFilter(t *testing.T) {
	f := filter.Filter{
		Saddr: netip.MustParsePrefix("198.18.0.0/15"),
		Daddr: netip.MustParsePrefix("fd00::/8"),
		Dev:   "veth0", Proto: 6, Dport: 80,
	}
	k := KernelFilter(f)
	if k.Active != 1 || k.Proto != 6 || k.Dport != 80 {
		t.Fatalf("scalars not set: %+v", k)
	}
	var a, m [16]byte
	ne.PutUint64(a[0:], k.Saddr.Addr[0])
	ne.PutUint64(m[0:], k.Saddr.Mask[0])
	if k.Saddr.Family != 4 || a[0] != 198 || a[1] != 18 || m[0] != 0xff || m[1] != 0xfe || m[2] != 0 {
		t.Errorf("saddr: family %d addr % x mask % x", k.Saddr.Family, a[:4], m[:4])
	}
	ne.PutUint64(a[0:], k.Daddr.Addr[0])
	ne.PutUint64(m[0:], k.Daddr.Mask[0])
	if k.Daddr.Family != 6 || a[0] != 0xfd || m[0] != 0xff || m[1] != 0 || k.Daddr.Mask[1] != 0 {
		t.Errorf("daddr: family %d addr % x mask % x", k.Daddr.Family, a[:2], m[:2])
	}
	if k.Addr.Family != 0 {
		t.Error("addr set although not given")
	}
	if string([]byte{byte(k.Ifname[0]), byte(k.Ifname[4])}) != "v0" || k.Ifname[5] != 0 {
		t.Errorf("ifname = %v", k.Ifname)
	}
	if KernelFilter(filter.Filter{}).Active != 0 {
		t.Error("empty filter is active")
	}
}

// TestExprInjected: the filter expression replaces the stub in the
// tracepoint programs.
func TestExprInjected(t *testing.T) {
	prog, err := pcapfilter.Compile("udp and port 53")
	if err != nil {
		t.Fatal(err)
	}
	expr, err := pcapfilter.Translate(prog)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := loadTracepoint()
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(tp, KernelFilter(filter.Filter{}), Options{Expr: expr, Snaplen: 128}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tp_btf_netif_receive_skb", "raw_tp_kfree_skb"} {
		if !Injected(tp.Programs[name].Instructions, expr) {
			t.Errorf("%s: the expression is not where the stub was", name)
		}
	}
}
