package kernel

import (
	"fmt"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// vmlinuxBTF is where the kernel exposes its own BTF.
const vmlinuxBTF = "/sys/kernel/btf/vmlinux"

var loadBTF = sync.OnceValues(func() (*btf.Spec, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("kernel BTF not found at %s: skbtrail needs a kernel built with CONFIG_DEBUG_INFO_BTF=y: %w", vmlinuxBTF, err)
	}
	return spec, nil
})

// BTF returns the running kernel's BTF (vmlinux only, no modules). It is
// loaded on the first call; later calls return the same spec, or the same
// error. The spec is shared: callers must not modify it, but may read it
// from several goroutines.
func BTF() (*btf.Spec, error) {
	return loadBTF()
}

// HasTracepoint reports whether the kernel has the tracepoint name (for
// example "netif_receive_skb", without its "net:" group), that is whether
// BTF holds the typedef btf_trace_<name> that tp_btf programs attach to.
// A nil spec has no tracepoints.
func HasTracepoint(spec *btf.Spec, name string) bool {
	_, ok := TracepointArgs(spec, name)
	return ok
}

// TracepointArgs returns the number of arguments the tracepoint name passes
// to a tp_btf or raw_tp program, and false when the kernel has no such
// tracepoint. The typedef btf_trace_<name> points to a function prototype
// whose first parameter is the tracepoint's private void * (not passed to
// programs); it is not counted.
func TracepointArgs(spec *btf.Spec, name string) (int, bool) {
	if spec == nil || name == "" {
		return 0, false
	}
	var td *btf.Typedef
	if err := spec.TypeByName("btf_trace_"+name, &td); err != nil {
		return 0, false
	}
	ptr, ok := btf.As[*btf.Pointer](td.Type)
	if !ok {
		return 0, false
	}
	proto, ok := btf.As[*btf.FuncProto](ptr.Target)
	if !ok || len(proto.Params) == 0 {
		return 0, false
	}
	return len(proto.Params) - 1, true
}
