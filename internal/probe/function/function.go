// Package function is the function probe source (function.c): kernel
// functions that take an skb, watched with fentry/fexit where the kernel
// allows, else kprobes (kprobe.multi for many at once), the skb's argument
// position read from the running kernel's BTF. Its programs share a
// tracing session's filter, followed skbs and ring buffer.
package function

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/probe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/kernel"
)

// Mode is how a function is probed.
type Mode = probe.Mode

// Found is the mode Listing gives a function the kernel has: how it
// attaches is known only by loading programs (skbtrail check).
const Found Mode = "found"

// Function probe modes.
const (
	Fentry      Mode = "fentry"       // fentry/fexit, one program per function
	Kprobe      Mode = "kprobe"       // kprobe/kretprobe, one link per function
	KprobeMulti Mode = "kprobe.multi" // kprobe.multi, one link for many functions
)

// ManyFuncs is the number of functions from which kprobe.multi is used
// instead of one fentry or kprobe each (fentry links take ~0.1s each to
// detach; a kprobe.multi link attaches a thousand functions at once).
const ManyFuncs = 40

// Status says whether a function can be probed here, and how.
type Status struct {
	Name   string // as in BTF (and the catalog)
	Group  string
	Symbol string // kallsyms name to attach a kprobe to (may have a suffix)
	Addr   uint64 // its address
	Arg    int    // skb argument position (1-based)
	Mode   Mode   // "" when unavailable
	Why    string
	Kind   catalog.FuncKind
}

// Report is what the function probes of a session did.
type Report struct {
	Wanted   int               // functions selected
	Attached []Status          // attached, with their mode
	Skipped  []Status          // not attached, with why
	Modes    map[Mode]int      // attached per mode
	Took     time.Duration     // time to resolve, load and attach
	Resolve  time.Duration     // of which: finding the functions (BTF, kallsyms, tracefs)
	Names    map[uint64]string // address -> function, for decoding
	Why      string            // set when no function probe can be used at all
}

// ModeString says how functions were attached: "fentry/fexit",
// "kprobe.multi and 2 via kprobe".
func (r Report) ModeString() string {
	var parts []string
	for _, m := range []Mode{Fentry, KprobeMulti, Kprobe} {
		if n := r.Modes[m]; n > 0 {
			name := string(m)
			if m == Fentry {
				name = "fentry/fexit"
			}
			parts = append(parts, fmt.Sprintf("%d via %s", n, name))
		}
	}
	return strings.Join(parts, ", ")
}

// Unavailable says why this kernel allows no function probe at all, or
// "" when it allows some.
func Unavailable(feat kernel.Features) string {
	if feat.Fentry.OK || feat.Kprobe.OK || feat.KprobeMulti.OK {
		return ""
	}
	return fmt.Sprintf("function probes unavailable: kprobe: %s; fentry: %s", feat.Kprobe.Detail, feat.Fentry.Detail)
}

// funcEnv is what resolving functions needs from the running kernel.
type funcEnv struct {
	spec      *btf.Spec
	index     map[string]*btf.Func // every BTF function, for -t all; nil: look up by name
	modules   map[string]*btf.Spec // module BTF loaded so far (nil: none there)
	syms      *kernel.Symbols
	suffixed  map[string]string // base name -> first suffixed kallsyms name
	traceable map[string]bool   // available_filter_functions; nil: unknown
	feat      kernel.Features
	listing   bool // resolve without choosing a mode (Listing)
}

// newFuncEnv reads kallsyms and the traceable functions; mount says
// whether it may mount tracefs to read them (not when only listing).
func newFuncEnv(spec *btf.Spec, feat kernel.Features, mount bool) (*funcEnv, error) {
	env := &funcEnv{spec: spec, feat: feat}
	syms, err := kernel.LoadSymbols()
	if err != nil {
		return nil, err
	}
	env.syms = syms
	env.traceable = readTraceable(mount)
	env.suffixed = map[string]string{}
	if env.traceable != nil {
		for name := range env.traceable {
			if base, _, ok := strings.Cut(name, "."); ok && base != "" {
				if old, dup := env.suffixed[base]; !dup || name < old {
					env.suffixed[base] = name
				}
			}
		}
	}
	return env, nil
}

// tracefsDirs are where tracefs may be mounted.
var tracefsDirs = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// readTraceable reads the functions ftrace (and so kprobes on the ftrace
// path, kprobe.multi and fentry) can attach to, mounting tracefs at
// /sys/kernel/tracing if nothing is mounted. nil when unreadable.
func readTraceable(mount bool) map[string]bool {
	read := func() map[string]bool {
		for _, d := range tracefsDirs {
			f, err := os.Open(d + "/available_filter_functions")
			if err != nil {
				continue
			}
			defer f.Close()
			m := map[string]bool{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				name, _, _ := strings.Cut(sc.Text(), " ")
				m[name] = true
			}
			if sc.Err() == nil && len(m) > 0 {
				return m
			}
		}
		return nil
	}
	if m := read(); m != nil || !mount {
		return m
	}
	if err := unix.Mount("tracefs", tracefsDirs[0], "tracefs", 0, ""); err == nil {
		return read()
	}
	return nil
}

// resolve finds how function name can be probed here.
func (env *funcEnv) resolve(t catalog.Tracer, many bool) Status {
	st := Status{Name: t.Name, Group: t.Group, Kind: t.Kind}
	f := env.btfFunc(t.Name)
	if f == nil {
		st.Why = "not in the BTF of the kernel or a loaded module (absent, inlined, or its module not loaded)"
		return st
	}
	pos, nargs := SkbArg(f)
	if why := checkSkbPos(t.Name, pos, nargs); why != "" {
		st.Why = why
		return st
	}
	st.Arg = pos
	if t.Kind == catalog.Ipt && pos != 1 && pos != 2 {
		st.Why = fmt.Sprintf("unknown layout: the skb is argument %d", pos)
		return st
	}
	exact := false
	if addr, ok := env.syms.Lookup(t.Name); ok && (env.traceable == nil || env.traceable[t.Name]) {
		st.Symbol, st.Addr, exact = t.Name, addr, true
	} else if s, ok := env.suffixed[t.Name]; ok {
		if addr, ok := env.syms.Lookup(s); ok {
			st.Symbol, st.Addr = s, addr
		}
	}
	if st.Symbol == "" {
		if _, ok := env.syms.Lookup(t.Name); ok {
			st.Why = "not traceable (notrace, or not in available_filter_functions)"
		} else {
			st.Why = "not in kallsyms (inlined)"
		}
		return st
	}
	if env.listing {
		st.Mode = Found
		return st
	}
	special := t.Kind != catalog.Plain
	switch {
	case many && !special && env.feat.KprobeMulti.OK:
		st.Mode = KprobeMulti
	case exact && env.feat.Fentry.OK && (!many || !env.feat.Kprobe.OK):
		st.Mode = Fentry
	case env.feat.Kprobe.OK:
		st.Mode = Kprobe
	case !exact && env.feat.Fentry.OK:
		st.Why = "exists only as " + st.Symbol + ": fentry needs the plain name, and kprobes are unavailable"
	default:
		st.Why = "no function probe type available"
	}
	return st
}

// btfFunc returns the BTF function name, or nil. Without the index (built
// for -t all) it looks the name up: iterating all of the kernel's types
// takes seconds on a slow machine.
func (env *funcEnv) btfFunc(name string) *btf.Func {
	if env.index != nil {
		return env.index[name]
	}
	if env.spec == nil {
		return nil
	}
	types, err := env.spec.AnyTypesByName(name)
	if err != nil {
		// A module's function (ipt_do_table in ip_tables) is in the
		// module's BTF; kallsyms says which module has it.
		if types, err = env.moduleTypes(name); err != nil {
			return nil
		}
	}
	for _, t := range types {
		if f, ok := t.(*btf.Func); ok {
			return f
		}
	}
	return nil
}

// moduleTypes looks name up in the BTF of the loaded module that has it.
func (env *funcEnv) moduleTypes(name string) ([]btf.Type, error) {
	addr, ok := env.syms.Lookup(name)
	if !ok {
		return nil, errors.New("not in kallsyms")
	}
	sym := env.syms.Symbolize(addr)
	i := strings.LastIndex(sym, " [")
	if i < 0 || !strings.HasSuffix(sym, "]") {
		return nil, errors.New("not in a module")
	}
	mod := sym[i+2 : len(sym)-1]
	if env.modules == nil {
		env.modules = map[string]*btf.Spec{}
	}
	spec, ok := env.modules[mod]
	if !ok {
		spec, _ = btf.LoadKernelModuleSpec(mod)
		env.modules[mod] = spec
	}
	if spec == nil {
		return nil, errors.New("no BTF for module " + mod)
	}
	return spec.AnyTypesByName(name)
}

// Availability reports for every catalog function whether and how it
// can be probed on this kernel (for -t ?).
func Availability(spec *btf.Spec, feat kernel.Features) []Status {
	out := make([]Status, 0, len(catalog.Functions))
	why := Unavailable(feat)
	var env *funcEnv
	if why == "" {
		var err error
		if env, err = newFuncEnv(spec, feat, true); err != nil {
			why = err.Error()
		}
	}
	for _, t := range catalog.Functions {
		if why != "" {
			out = append(out, Status{Name: t.Name, Group: t.Group, Why: why})
			continue
		}
		out = append(out, env.resolve(t, false))
	}
	return out
}

// Attach resolves, loads and attaches the selected functions (fns; -t all
// as catalog.AllFunctions) for session s, with their returns when ret. It
// fails only when loading fails; functions it cannot probe are listed in
// the report with why, and Report.Why says why none can be where the
// kernel allows no function probe.
func Attach(s *probe.Session, fns []catalog.Tracer, ret bool) (*Report, error) {
	start := time.Now()
	rep := &Report{Modes: map[Mode]int{}, Names: map[uint64]string{}}
	kspec, err := kernel.BTF()
	if err != nil {
		return nil, err
	}
	feat := kernel.Detect()
	if why := Unavailable(feat); why != "" {
		rep.Why = why
		rep.Wanted = len(fns)
		return rep, nil
	}
	env, err := newFuncEnv(kspec, feat, true)
	if err != nil {
		rep.Why = "function probes unavailable: " + err.Error()
		return rep, nil
	}
	a := &attacher{s: s, rep: rep, cache: btf.NewCache()}
	// Expand -t all, without duplicates.
	seen := map[string]bool{}
	var list []catalog.Tracer
	for _, t := range fns {
		if t.Name == catalog.AllFunctions {
			continue
		}
		if !seen[t.Name] {
			seen[t.Name] = true
			list = append(list, t)
		}
	}
	for _, t := range fns {
		if t.Name != catalog.AllFunctions {
			continue
		}
		env.index = funcIndex(kspec)
		for _, name := range skbFuncs(env.index) {
			if seen[name] || (env.traceable != nil && !env.traceable[name]) {
				continue
			}
			seen[name] = true
			list = append(list, catalog.Tracer{Name: name, Group: "function", Func: true})
		}
	}
	rep.Wanted = len(list)
	many := len(list) > ManyFuncs
	var want []Status
	for _, t := range list {
		st := env.resolve(t, many)
		if st.Mode == "" {
			rep.Skipped = append(rep.Skipped, st)
			continue
		}
		want = append(want, st)
	}
	rep.Resolve = time.Since(start)
	if len(want) > 0 {
		if err := a.attach(want, ret, kspec); err != nil {
			return nil, err
		}
	}
	for _, st := range rep.Attached {
		rep.Modes[st.Mode]++
		rep.Names[st.Addr] = st.Name
	}
	rep.Took = time.Since(start)
	return rep, nil
}

// attacher attaches functions for one session.
type attacher struct {
	s     *probe.Session
	rep   *Report
	cache *btf.Cache
}

// attachFunctions loads the programs the wanted functions need, sharing
// the session's maps, and attaches them, moving each function to Attached
// or Skipped.
func (a *attacher) attach(want []Status, ret bool, kspec *btf.Spec) error {
	s, cache := a.s, a.cache
	spec, err := loadFunction()
	if err != nil {
		return fmt.Errorf("load function probe object: %w", err)
	}
	if err := s.Configure(spec); err != nil {
		return err
	}
	if err := spec.Variables["want_ret"].Set(boolByte(ret)); err != nil {
		return fmt.Errorf("set want_ret: %w", err)
	}
	shared := s.SharedMaps()
	rep := a.rep
	popts := ebpf.ProgramOptions{KernelTypes: kspec, ExtraRelocationTargets: moduleTargets(want)}

	// Kprobe programs: one collection, each program used for many functions.
	var kp []Status
	var fe []Status
	for _, st := range want {
		if st.Mode == Fentry {
			fe = append(fe, st)
		} else {
			kp = append(kp, st)
		}
	}
	if len(kp) > 0 {
		// Only the programs these functions use: another may not even
		// relocate here (kprobe_ipt_* without x_tables loaded).
		need := map[string]bool{}
		for _, st := range kp {
			entry, exit := kprobeProgs(st, st.Mode == KprobeMulti)
			need[entry] = true
			if needsExit(st, ret) {
				need[exit] = true
			}
		}
		cs := probe.Only(spec, need)
		coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
			Programs:        popts,
			MapReplacements: shared,
			Cache:           cache,
		})
		if err != nil {
			return probe.Explain(err)
		}
		s.Keep(coll)
		shared["rets"] = coll.Maps["rets"]
		a.attachKprobes(coll, kp, ret)
	}
	if len(fe) > 0 {
		a.attachFentries(spec, fe, ret, popts, shared)
	}
	sort.Slice(rep.Skipped, func(i, j int) bool { return rep.Skipped[i].Name < rep.Skipped[j].Name })
	return nil
}

// moduleTargets returns the BTF of modules whose types the wanted
// functions' programs read: struct xt_table is x_tables' where that is a
// module (Debian), so ipt_do_table's table name relocates against it.
func moduleTargets(want []Status) []*btf.Spec {
	for _, st := range want {
		if st.Kind == catalog.Ipt {
			if spec, err := btf.LoadKernelModuleSpec("x_tables"); err == nil {
				return []*btf.Spec{spec}
			}
			break
		}
	}
	return nil
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// kprobe programs by kind.
func kprobeProgs(st Status, multi bool) (entry, exit string) {
	switch st.Kind {
	case catalog.Clone:
		return "kprobe_clone", "kretprobe_clone"
	case catalog.Ipt:
		if st.Arg == 1 {
			return "kprobe_ipt_a", "kretprobe_ret"
		}
		return "kprobe_ipt_b", "kretprobe_ret"
	}
	if multi {
		return fmt.Sprintf("kmulti_arg%d", st.Arg), "kretmulti_ret"
	}
	return fmt.Sprintf("kprobe_arg%d", st.Arg), "kretprobe_ret"
}

func needsExit(st Status, ret bool) bool { return ret || st.Kind != catalog.Plain }

func (a *attacher) attachKprobes(coll *ebpf.Collection, kp []Status, ret bool) {
	rep := a.rep
	// kprobe.multi: one link per argument position (and one for returns).
	byArg := map[int][]Status{}
	for _, st := range kp {
		if st.Mode == KprobeMulti {
			byArg[st.Arg] = append(byArg[st.Arg], st)
			continue
		}
		entry, exit := kprobeProgs(st, false)
		l, err := link.Kprobe(st.Symbol, coll.Programs[entry], &link.KprobeOptions{Cookie: st.Addr})
		if err != nil {
			st.Mode, st.Why = "", "kprobe: "+firstLine(err)
			rep.Skipped = append(rep.Skipped, st)
			continue
		}
		a.s.AddLink(l)
		if needsExit(st, ret) {
			r, err := link.Kretprobe(st.Symbol, coll.Programs[exit], &link.KprobeOptions{Cookie: st.Addr})
			if err != nil {
				st.Why = "kretprobe: " + firstLine(err) // entry still attached
			} else {
				a.s.AddLink(r)
			}
		}
		rep.Attached = append(rep.Attached, st)
	}
	args := make([]int, 0, len(byArg))
	for arg := range byArg {
		args = append(args, arg)
	}
	sort.Ints(args)
	for _, arg := range args {
		entry, exit := kprobeProgs(byArg[arg][0], true)
		ok := a.attachMulti(coll.Programs[entry], byArg[arg], false)
		if ret && len(ok) > 0 {
			a.attachMulti(coll.Programs[exit], ok, true)
		}
		rep.Attached = append(rep.Attached, ok...)
	}
}

// attachMulti attaches prog to every function of list with kprobe.multi
// links. The kernel refuses a whole set for one function it cannot probe:
// a refused set is split in halves until the culprits are found and
// skipped. It returns the functions attached.
func (a *attacher) attachMulti(prog *ebpf.Program, list []Status, retprobe bool) []Status {
	if len(list) == 0 {
		return nil
	}
	opts := link.KprobeMultiOptions{}
	for _, st := range list {
		opts.Symbols = append(opts.Symbols, st.Symbol)
		opts.Cookies = append(opts.Cookies, st.Addr)
	}
	var l link.Link
	var err error
	if retprobe {
		l, err = link.KretprobeMulti(prog, opts)
	} else {
		l, err = link.KprobeMulti(prog, opts)
	}
	if err == nil {
		a.s.AddLink(l)
		return list
	}
	if len(list) == 1 {
		if !retprobe {
			st := list[0]
			st.Mode, st.Why = "", "kprobe.multi: "+firstLine(err)
			a.rep.Skipped = append(a.rep.Skipped, st)
		}
		return nil
	}
	half := len(list) / 2
	return append(a.attachMulti(prog, list[:half], retprobe), a.attachMulti(prog, list[half:], retprobe)...)
}

// fentry programs by kind.
func fentryProgs(st Status) (entry, exit string) {
	switch st.Kind {
	case catalog.Clone:
		return "fentry_clone", "fexit_clone"
	case catalog.Ipt:
		if st.Arg == 1 {
			return "fentry_ipt_a", "fexit_ret"
		}
		return "fentry_ipt_b", "fexit_ret"
	}
	return fmt.Sprintf("fentry_arg%d", st.Arg), "fexit_ret"
}

// attachFentries loads an fentry (and fexit) program per function, in
// collections sharing the session's maps. A batch the kernel refuses is
// split until the functions it refuses are found and skipped.
func (a *attacher) attachFentries(spec *ebpf.CollectionSpec, fe []Status, ret bool, popts ebpf.ProgramOptions, shared map[string]*ebpf.Map) {
	rep, cache := a.rep, a.cache
	var load func(batch []Status)
	load = func(batch []Status) {
		cs := spec.Copy()
		base := cs.Programs
		cs.Programs = map[string]*ebpf.ProgramSpec{}
		for i, st := range batch {
			entry, exit := fentryProgs(st)
			p := base[entry].Copy()
			p.AttachTo = st.Name
			cs.Programs[fmt.Sprintf("e%d", i)] = p
			if needsExit(st, ret) {
				x := base[exit].Copy()
				x.AttachTo = st.Name
				cs.Programs[fmt.Sprintf("x%d", i)] = x
			}
		}
		coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
			Programs:        popts,
			MapReplacements: shared,
			Cache:           cache,
		})
		if err != nil {
			if len(batch) == 1 {
				st := batch[0]
				st.Mode, st.Why = "", "fentry: "+firstLine(probe.Explain(err))
				rep.Skipped = append(rep.Skipped, st)
				return
			}
			half := len(batch) / 2
			load(batch[:half])
			load(batch[half:])
			return
		}
		a.s.Keep(coll)
		if shared["rets"] == nil {
			shared["rets"] = coll.Maps["rets"]
		}
		for i, st := range batch {
			l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[fmt.Sprintf("e%d", i)], AttachType: ebpf.AttachTraceFEntry})
			if err != nil {
				st.Mode, st.Why = "", "fentry: "+firstLine(err)
				rep.Skipped = append(rep.Skipped, st)
				continue
			}
			a.s.AddLink(l)
			if x := coll.Programs[fmt.Sprintf("x%d", i)]; x != nil {
				if l, err := link.AttachTracing(link.TracingOptions{Program: x, AttachType: ebpf.AttachTraceFExit}); err == nil {
					a.s.AddLink(l)
				} else {
					st.Why = "fexit: " + firstLine(err)
				}
			}
			rep.Attached = append(rep.Attached, st)
		}
	}
	load(fe)
}

func firstLine(err error) string {
	msg := err.Error()
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		msg = "verifier: " + ve.Cause.Error()
	}
	line, _, _ := strings.Cut(msg, "\n")
	return line
}

// Nothing explains why a session with tracepoints st skipped and function
// report r (nil: no functions selected) has no probe at all.
func Nothing(skipped []probe.Status, r *Report) error {
	switch {
	case r != nil && r.Why != "":
		return errors.New(r.Why)
	case len(skipped) > 0:
		return fmt.Errorf("no tracer could be attached: %s", skipped[0].Why)
	case r != nil && len(r.Skipped) > 0:
		return fmt.Errorf("none of the %d selected functions could be probed: %s: %s", r.Wanted, r.Skipped[0].Name, r.Skipped[0].Why)
	}
	return errors.New("no tracer could be attached")
}

// Describe says which function probe source skbtrail uses on this
// kernel, and what it falls back to.
func Describe(f kernel.Features) string {
	if why := Unavailable(f); why != "" {
		return "function probes: none: " + strings.TrimPrefix(why, "function probes unavailable: ") + ": tracepoints only"
	}
	var use []string
	if f.Fentry.OK {
		use = append(use, "fentry/fexit")
	}
	if f.Kprobe.OK {
		if f.Fentry.OK {
			use = append(use, "kprobe/kretprobe where fentry cannot attach")
		} else {
			use = append(use, "kprobe/kretprobe")
		}
	}
	if f.KprobeMulti.OK {
		use = append(use, "kprobe.multi for many functions")
	} else {
		use = append(use, "no kprobe.multi: many functions attach one by one")
	}
	return "function probes: " + strings.Join(use, "; ")
}

// Listing reports for every catalog function whether the running kernel
// has it where a probe could attach (BTF, kallsyms, and ftrace's list when
// tracefs is mounted), without loading a program or mounting anything:
// the mode of a function it has is Found. For `-t ?`.
func Listing(spec *btf.Spec) []Status {
	out := make([]Status, 0, len(catalog.Functions))
	env, err := newFuncEnv(spec, kernel.Features{}, false)
	if env != nil {
		env.listing = true
	}
	for _, t := range catalog.Functions {
		if err != nil {
			out = append(out, Status{Name: t.Name, Group: t.Group, Why: err.Error()})
			continue
		}
		out = append(out, env.resolve(t, false))
	}
	return out
}

// Avail is st as the tracer tree shows it.
func (st Status) Avail() catalog.Avail {
	t := catalog.Tracer{Name: st.Name, Group: st.Group, Func: true, Kind: st.Kind}
	if c := catalog.FuncByName(st.Name); c != nil {
		t.Desc = c.Desc
	}
	return catalog.Avail{Tracer: t, Mode: st.Mode, Why: st.Why, Arg: st.Arg}
}

// Avails converts a list for the tracer tree.
func Avails(sts []Status) []catalog.Avail {
	out := make([]catalog.Avail, len(sts))
	for i, st := range sts {
		out[i] = st.Avail()
	}
	return out
}
