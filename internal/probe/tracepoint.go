package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/event"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
	"github.com/skbtrail/skbtrail/internal/pcapfilter"
)

// Mode is how a tracer was attached.
type Mode = catalog.Mode

const (
	TpBtf Mode = "tp_btf"
	RawTp Mode = "raw_tp"
)

// Status says whether a tracer can be used on this kernel, and how.
type Status = catalog.Avail

// Availability reports, for every catalog tracer, whether the running kernel
// has it and which program type would be used. spec is the kernel's BTF.
func Availability(spec *btf.Spec, feat kernel.Features) []Status {
	out := make([]Status, 0, len(catalog.Tracepoints))
	for _, t := range catalog.Tracepoints {
		s := Status{Tracer: t}
		switch {
		case !kernel.HasTracepoint(spec, t.Name):
			s.Why = "not in this kernel"
		case feat.TpBtf.OK:
			s.Mode = TpBtf
		case feat.RawTp.OK:
			s.Mode = RawTp
		default:
			s.Why = "neither tp_btf nor raw_tp can be attached: " + feat.RawTp.Detail
		}
		out = append(out, s)
	}
	return out
}

// Options configure a tracing Session.
type Options struct {
	Filter   filter.Filter
	Tracers  []catalog.Tracer // from Select
	Ret      bool             // function probes: report return values (--ret)
	RingSize int              // ring buffer bytes, a power of two; 0: 4 MiB
	// Expr is a filter expression translated to eBPF (pcapfilter.Translate):
	// the body of filter_pcap_l3, which every probe then runs on the
	// packet's IP header. It adds to Filter: both must match.
	Expr asm.Instructions
	// RateLimit, when not 0, lets the probes write at most that many
	// events per second (windows of 2^30 ns, all CPUs together); the
	// others are counted (Session.Limited).
	RateLimit uint32
	// Snaplen, when not 0, makes every event carry the first Snaplen bytes
	// of its packet from the IP header on (see event.Record and event.DataHeaderSize).
	Snaplen uint32
}

// MaxSnaplen is the largest Options.Snaplen.
const MaxSnaplen = event.MaxSnaplen

// tracepointArgs tells the tracepoint programs which optional arguments the
// running kernel's tracepoints pass, from their BTF prototypes.
func tracepointArgs(spec *ebpf.CollectionSpec, kspec *btf.Spec) error {
	n, _ := kernel.TracepointArgs(kspec, "udp_fail_queue_rcv_skb")
	var skb uint8
	if n >= 3 {
		skb = 1
	}
	if err := spec.Variables["udp_fail_skb"].Set(skb); err != nil {
		return fmt.Errorf("set udp_fail_skb: %w", err)
	}
	return nil
}

// Setup writes the filter, expression and snapshot length into a spec's
// .rodata and injects the expression into its programs: every probe
// source's object takes them the same way.
func Setup(spec *ebpf.CollectionSpec, kf Filter, opts Options) error {
	if len(opts.Expr) > 0 {
		kf.Active = 1
	}
	if err := spec.Variables["cfg"].Set(kf); err != nil {
		return fmt.Errorf("set filter: %w", err)
	}
	if opts.Snaplen > MaxSnaplen {
		return fmt.Errorf("snapshot length %d is over %d", opts.Snaplen, MaxSnaplen)
	}
	if err := spec.Variables["snaplen"].Set(opts.Snaplen); err != nil {
		return fmt.Errorf("set snaplen: %w", err)
	}
	if v := spec.Variables["rate_limit"]; v != nil {
		if err := v.Set(opts.RateLimit); err != nil {
			return fmt.Errorf("set rate_limit: %w", err)
		}
	}
	if len(opts.Expr) == 0 {
		return nil
	}
	if err := spec.Variables["pcap_filter"].Set(uint8(1)); err != nil {
		return fmt.Errorf("set pcap_filter: %w", err)
	}
	// The expression loads from the copy of the headers: copy as much
	// as it may read in one go.
	if err := spec.Variables["hdr_copy"].Set(uint32(pcapfilter.CopySize)); err != nil {
		return fmt.Errorf("set hdr_copy: %w", err)
	}
	for name, p := range spec.Programs {
		if _, err := pcapfilter.Inject(p, opts.Expr); err != nil {
			return fmt.Errorf("%s: inject filter expression: %w", name, err)
		}
	}
	return nil
}

// Session is a set of attached tracepoint programs and their ring buffer.
type Session struct {
	coll     *ebpf.Collection
	extra    []*ebpf.Collection // more programs sharing coll's maps (observers)
	filter   tracepointFilter
	opts     Options
	links    []link.Link
	reader   *ringbuf.Reader
	Attached []Status // tracers attached, with the mode used
	Skipped  []Status // selected tracers this kernel cannot give, with why
}

// Open loads the programs for the selected tracepoints with the filter
// compiled in, attaches them, and opens the ring buffer. Tracepoints the
// kernel lacks are skipped and listed in Skipped; it fails only when none
// attach and no function is selected (function tracers in opts.Tracers
// are for the function source, which attaches them to the session).
func Open(opts Options) (*Session, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	kspec, err := kernel.BTF()
	if err != nil {
		return nil, err
	}
	// Detect() probes every program type (a quarter second); tracing
	// only needs to know whether tp_btf loads, which the load below
	// finds out, falling back to raw_tp.
	feat := kernel.Features{TpBtf: kernel.Support{OK: true}, RawTp: kernel.Support{OK: true}}
	spec, err := loadTracepoint()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	kf := KernelFilter(opts.Filter)
	if err := tracepointArgs(spec, kspec); err != nil {
		return nil, err
	}
	if err := Setup(spec, kf, opts); err != nil {
		return nil, err
	}
	if opts.RingSize > 0 {
		spec.Maps["events"].MaxEntries = uint32(opts.RingSize)
	}

	avail := map[string]Status{}
	for _, st := range Availability(kspec, feat) {
		avail[st.Tracer.Name] = st
	}
	s := &Session{filter: kf, opts: opts}
	var want []Status
	var fns []catalog.Tracer
	for _, t := range opts.Tracers {
		if t.Func {
			fns = append(fns, t)
			continue
		}
		st := avail[t.Name]
		if st.Mode == "" {
			s.Skipped = append(s.Skipped, st)
			continue
		}
		want = append(want, st)
	}
	if len(want) == 0 && len(fns) == 0 {
		return nil, fmt.Errorf("none of the selected tracers is available on this kernel (run 'skbtrail -t ?')")
	}

	cache := btf.NewCache()
	coll, err := loadCollection(spec, want, kspec, cache)
	if err != nil && len(want) > 0 && want[0].Mode == TpBtf {
		// Some kernels list tp_btf support but refuse a program: fall
		// back to raw tracepoints for all of them.
		for i := range want {
			want[i].Mode = RawTp
		}
		var err2 error
		if coll, err2 = loadCollection(spec, want, kspec, cache); err2 == nil {
			err = nil
		}
	}
	if err != nil {
		return nil, Explain(err)
	}
	s.coll = coll

	for _, st := range want {
		prog := coll.Programs[progName(st)]
		var l link.Link
		if st.Mode == TpBtf {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
		} else {
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: st.Tracer.Name, Program: prog})
		}
		if err != nil {
			st.Why = fmt.Sprintf("attach %s: %v", st.Mode, err)
			st.Mode = ""
			s.Skipped = append(s.Skipped, st)
			continue
		}
		s.links = append(s.links, l)
		s.Attached = append(s.Attached, st)
	}
	if len(s.Attached) == 0 && len(fns) == 0 {
		s.Close()
		return nil, fmt.Errorf("no tracer could be attached: %s", s.Skipped[0].Why)
	}
	s.reader, err = ringbuf.NewReader(coll.Maps["events"])
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open ring buffer: %w", err)
	}
	return s, nil
}

func progName(st Status) string {
	if st.Mode == TpBtf {
		return "tp_btf_" + st.Tracer.Name
	}
	return "raw_tp_" + st.Tracer.Name
}

// loadCollection loads the maps and only the wanted programs of spec.
func loadCollection(spec *ebpf.CollectionSpec, want []Status, kspec *btf.Spec, cache *btf.Cache) (*ebpf.Collection, error) {
	// The kernel's verifier is most of the start-up time, and it runs on
	// the loading thread: load the maps, then the programs in as many
	// parts as there are CPUs (at most 4), sharing the maps.
	maps := spec.Copy()
	maps.Programs = nil
	coll, err := ebpf.NewCollectionWithOptions(maps, ebpf.CollectionOptions{})
	if err != nil {
		return nil, err
	}
	coll.Programs = map[string]*ebpf.Program{}
	parts := min(runtime.NumCPU(), 4, len(want))
	type result struct {
		c   *ebpf.Collection
		err error
	}
	results := make(chan result, parts)
	for i := 0; i < parts; i++ {
		keep := map[string]bool{}
		for j := i; j < len(want); j += parts {
			keep[progName(want[j])] = true
		}
		cs := Only(spec, keep)
		go func() {
			c, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
				Programs:        ebpf.ProgramOptions{KernelTypes: kspec},
				Cache:           cache,
				MapReplacements: coll.Maps,
			})
			results <- result{c, err}
		}()
	}
	var firstErr error
	for i := 0; i < parts; i++ {
		r := <-results
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		for name, p := range r.c.Programs {
			coll.Programs[name] = p
		}
		for _, m := range r.c.Maps {
			m.Close() // clones of coll's maps
		}
	}
	if firstErr != nil {
		coll.Close()
		return nil, firstErr
	}
	return coll, nil
}

// Only returns a copy of spec with only the programs named in keep (its
// maps and variables all stay), so that just those are loaded.
func Only(spec *ebpf.CollectionSpec, keep map[string]bool) *ebpf.CollectionSpec {
	cs := spec.Copy()
	for name := range cs.Programs {
		if !keep[name] {
			delete(cs.Programs, name)
		}
	}
	return cs
}

// Explain turns a load error into one that says what to do.
func Explain(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("the kernel's verifier rejected a probe program (please report this with 'skbtrail check' output): %w", err)
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("load BPF programs: %w: run as root (or with CAP_BPF and CAP_PERFMON)", err)
	}
	return fmt.Errorf("load BPF programs: %w", err)
}

// Configure writes the session's filter, expression and snapshot length
// into another probe source's spec, so that its programs decide as the
// session's do.
func (s *Session) Configure(spec *ebpf.CollectionSpec) error {
	return Setup(spec, s.filter, s.opts)
}

// SharedMaps returns the maps every probe source of the session shares (the
// ring buffer, the followed skbs, the lost-event counter, the per-CPU
// state with the skbs that did not match), to pass as
// MapReplacements when loading another source's collection.
func (s *Session) SharedMaps() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{
		"events":    s.coll.Maps["events"],
		"followed":  s.coll.Maps["followed"],
		"lost":      s.coll.Maps["lost"],
		"cpu_state": s.coll.Maps["cpu_state"],
		"rate":      s.coll.Maps["rate"],
	}
}

// Keep makes the session close c with itself.
func (s *Session) Keep(c *ebpf.Collection) { s.extra = append(s.extra, c) }

// AddLink makes the session detach l with its own programs.
func (s *Session) AddLink(l link.Link) { s.links = append(s.links, l) }

// Read blocks until the next record arrives and copies its raw bytes into
// rec, reusing rec's buffer. It returns ringbuf.ErrClosed after Close.
func (s *Session) Read(rec *ringbuf.Record) error {
	return s.reader.ReadInto(rec)
}

// SetDeadline makes Read return os.ErrDeadlineExceeded once t has passed
// and no record is waiting.
func (s *Session) SetDeadline(t time.Time) { s.reader.SetDeadline(t) }

// Detach detaches every program, so no new events arrive; records already
// in the ring buffer can still be read.
func (s *Session) Detach() {
	for _, l := range s.links {
		l.Close()
	}
	s.links = nil
}

// Lost returns how many events the kernel could not write because the ring
// buffer was full.
func (s *Session) Lost() uint64 {
	var per []uint64
	if err := s.coll.Maps["lost"].Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

// Limited returns how many events the probes did not write because of
// Options.RateLimit.
func (s *Session) Limited() uint64 {
	var per []tracepointCpuState
	if err := s.coll.Maps["cpu_state"].Lookup(uint32(0), &per); err != nil {
		return 0
	}
	var n uint64
	for _, v := range per {
		n += v.Limited
	}
	return n
}

// Looked returns how many packets the probes looked at the headers of
// (an skb's first probe with a filter; again after its headers may have
// been rewritten, or when the per-CPU memory of rejected skbs forgot it),
// and how many of them matched: per-CPU counters the programs keep at no
// other cost. Both are 0 without a filter.
func (s *Session) Looked() (seen, matched uint64) {
	var per []tracepointCpuState
	if err := s.coll.Maps["cpu_state"].Lookup(uint32(0), &per); err != nil {
		return 0, 0
	}
	for _, v := range per {
		seen += v.Seen
		matched += v.Matched
	}
	return seen, matched
}

// Close detaches every program and frees the maps. It unblocks Read.
func (s *Session) Close() error {
	if s.reader != nil {
		s.reader.Close()
	}
	s.Detach()
	for _, c := range s.extra {
		c.Close()
	}
	if s.coll != nil {
		s.coll.Close()
	}
	return nil
}

// KernelFilter converts the user's filter into the layout of struct filter.
func KernelFilter(f filter.Filter) Filter {
	var k tracepointFilter
	setAddr := func(p netip.Prefix) (a [2]uint64, m [2]uint64, fam uint8) {
		if !p.IsValid() {
			return
		}
		var ab, mb [16]byte
		n := 4
		fam = 4
		if p.Addr().Is6() {
			n, fam = 16, 6
		}
		raw := p.Addr().AsSlice()
		copy(ab[:], raw)
		for i := 0; i < p.Bits(); i++ {
			mb[i/8] |= 0x80 >> (i % 8)
		}
		for i := 0; i < n; i++ {
			ab[i] &= mb[i]
		}
		a[0], a[1] = ne.Uint64(ab[0:8]), ne.Uint64(ab[8:16])
		m[0], m[1] = ne.Uint64(mb[0:8]), ne.Uint64(mb[8:16])
		return
	}
	k.Saddr.Addr, k.Saddr.Mask, k.Saddr.Family = setAddr(f.Saddr)
	k.Daddr.Addr, k.Daddr.Mask, k.Daddr.Family = setAddr(f.Daddr)
	k.Addr.Addr, k.Addr.Mask, k.Addr.Family = setAddr(f.Addr)
	k.Netns = f.Netns
	k.Sport, k.Dport, k.Port = f.Sport, f.Dport, f.Port
	k.Proto = f.Proto
	for i := 0; i < len(f.Dev) && i < 15; i++ {
		k.Ifname[i] = int8(f.Dev[i])
	}
	if !f.Empty() {
		k.Active = 1
	}
	return k
}

var ne = binary.NativeEndian

// Filter is the user's filter as every probe source's programs take it in
// .rodata (struct filter in bpf/packet.h).
type Filter = tracepointFilter

// Injected reports whether insns hold the expression body where the stub
// filter_pcap_l3 was (for tests of each probe source).
func Injected(insns asm.Instructions, body asm.Instructions) bool {
	for i, ins := range insns {
		if ins.Symbol() == pcapfilter.StubName {
			return i+len(body) <= len(insns) && insns[i+len(body)-1].OpCode == body[len(body)-1].OpCode
		}
	}
	return false
}
