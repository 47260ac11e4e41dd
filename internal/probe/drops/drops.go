// Package drops is the drop counting probe source (drops.c): one program
// on skb:kfree_skb that counts drops in a per-CPU hash by reason, location,
// network namespace and device (and stack), so that nothing per packet
// reaches user space. The drops session reads the counts.
package drops

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/probe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"

	"github.com/skbtrail/skbtrail/internal/filter"
	"github.com/skbtrail/skbtrail/internal/kernel"
)

// Options configure a drop counting session (`skbtrail drops`).
type Options struct {
	Filter filter.Filter
	Stack  bool // record each drop's kernel stack
	// MaxKeys bounds the number of distinct (reason, location, netns,
	// device[, stack]) keys the kernel counts; 0: the object's default
	// (4096). Drops of new keys beyond it are counted by Full.
	MaxKeys int
}

// Drops is the kfree_skb drop counter, attached.
type Drops struct {
	coll    *ebpf.Collection
	link    link.Link
	Mode    probe.Mode // how kfree_skb was attached
	MaxKeys int        // capacity of the counting map

	ncpu  int
	keys  []dropsDropKey
	vals  []uint64
	batch bool // batch lookups work on this kernel
}

// Open loads the drop counter with the filter compiled in and attaches
// it to skb:kfree_skb, with tp_btf or, where that fails, raw_tp.
func Open(opts Options) (*Drops, error) {
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("remove memlock limit: %w", err)
	}
	kspec, err := kernel.BTF()
	if err != nil {
		return nil, err
	}
	if !kernel.HasTracepoint(kspec, event.KfreeSkb.String()) {
		return nil, fmt.Errorf("this kernel has no skb:kfree_skb tracepoint: drops cannot be counted")
	}
	spec, err := loadDrops()
	if err != nil {
		return nil, fmt.Errorf("load BPF object: %w", err)
	}
	if err := spec.Variables["cfg"].Set(probe.KernelFilter(opts.Filter)); err != nil {
		return nil, fmt.Errorf("set filter: %w", err)
	}
	if opts.Stack {
		if err := spec.Variables["want_stack"].Set(uint8(1)); err != nil {
			return nil, fmt.Errorf("set stack: %w", err)
		}
	} else {
		spec.Maps["stacks"].MaxEntries = 1
	}
	if opts.MaxKeys > 0 {
		spec.Maps["drops"].MaxEntries = uint32(opts.MaxKeys)
	}
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("count CPUs: %w", err)
	}

	d := &Drops{ncpu: ncpu, MaxKeys: int(spec.Maps["drops"].MaxEntries), batch: true}
	cache := btf.NewCache()
	var errs []error
	for _, mode := range []probe.Mode{probe.TpBtf, probe.RawTp} {
		if err := d.attach(spec, mode, kspec, cache); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", mode, err))
			continue
		}
		return d, nil
	}
	return nil, probe.Explain(errors.Join(errs...))
}

// attach loads the program of one mode with the maps and attaches it.
func (d *Drops) attach(spec *ebpf.CollectionSpec, mode probe.Mode, kspec *btf.Spec, cache *btf.Cache) error {
	name := "tp_btf_kfree_skb"
	if mode == probe.RawTp {
		name = "raw_tp_kfree_skb"
	}
	cs := probe.Only(spec, map[string]bool{name: true})
	coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kspec},
		Cache:    cache,
	})
	if err != nil {
		return err
	}
	prog := coll.Programs[name]
	var l link.Link
	if mode == probe.TpBtf {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: ebpf.AttachTraceRawTp})
	} else {
		l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: event.KfreeSkb.String(), Program: prog})
	}
	if err != nil {
		coll.Close()
		return fmt.Errorf("attach: %w", err)
	}
	d.coll, d.link, d.Mode = coll, l, mode
	return nil
}

// Read returns every key's count since OpenDrops, summed over CPUs,
// appending to buf[:0]. It reads the map with batch lookups (a few system
// calls for the whole map) where the kernel has them, else key by key.
func (d *Drops) Read(buf []event.DropCount) ([]event.DropCount, error) {
	buf = buf[:0]
	m := d.coll.Maps["drops"]
	if d.batch {
		out, err := d.readBatch(m, buf)
		if err == nil {
			return out, nil
		}
		if !errors.Is(err, ebpf.ErrNotSupported) {
			return buf, err
		}
		d.batch = false
	}
	var k dropsDropKey
	var per []uint64
	it := m.Iterate()
	for it.Next(&k, &per) {
		buf = append(buf, event.DropCount{Key: fromKernelKey(k), Count: sum(per)})
	}
	return buf, it.Err()
}

func (d *Drops) readBatch(m *ebpf.Map, buf []event.DropCount) ([]event.DropCount, error) {
	const chunk = 256
	if d.keys == nil {
		d.keys = make([]dropsDropKey, chunk)
		d.vals = make([]uint64, chunk*d.ncpu)
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := m.BatchLookup(&cursor, d.keys, d.vals, nil)
		for i := 0; i < n; i++ {
			buf = append(buf, event.DropCount{Key: fromKernelKey(d.keys[i]), Count: sum(d.vals[i*d.ncpu : (i+1)*d.ncpu])})
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// Delete removes keys from the counting map, to make room for others. A
// drop counted between the last Read and Delete is lost; use it only for
// keys that have been idle.
func (d *Drops) Delete(keys []event.DropKey) error {
	m := d.coll.Maps["drops"]
	var errs []error
	for _, k := range keys {
		kk := toKernelKey(k)
		if err := m.Delete(&kk); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Full returns how many drops could not be counted because the map was
// full, since OpenDrops.
func (d *Drops) Full() uint64 {
	var per []uint64
	if err := d.coll.Maps["full"].Lookup(uint32(0), &per); err != nil {
		return 0
	}
	return sum(per)
}

// Stack returns the kernel stack recorded under id, innermost frame first.
func (d *Drops) Stack(id int32) ([]uint64, error) {
	if id < 0 {
		return nil, nil
	}
	var frames [127]uint64
	if err := d.coll.Maps["stacks"].Lookup(uint32(id), &frames); err != nil {
		return nil, err
	}
	var out []uint64
	for _, f := range frames {
		if f == 0 {
			break
		}
		out = append(out, f)
	}
	return out, nil
}

// Close detaches the program and frees the maps.
func (d *Drops) Close() error {
	if d.link != nil {
		d.link.Close()
		d.link = nil
	}
	if d.coll != nil {
		d.coll.Close()
		d.coll = nil
	}
	return nil
}

func sum(per []uint64) uint64 {
	var n uint64
	for _, v := range per {
		n += v
	}
	return n
}

func fromKernelKey(k dropsDropKey) event.DropKey {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&k.Ifname[0])), len(k.Ifname))
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return event.DropKey{Location: k.Location, Reason: k.Reason, Netns: k.Netns, Ifname: string(b[:n]), Stack: k.Stack}
}

func toKernelKey(k event.DropKey) dropsDropKey {
	kk := dropsDropKey{Location: k.Location, Reason: k.Reason, Netns: k.Netns, Stack: k.Stack}
	for i := 0; i < len(k.Ifname) && i < len(kk.Ifname)-1; i++ {
		kk.Ifname[i] = int8(k.Ifname[i])
	}
	return kk
}
