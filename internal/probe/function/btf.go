package function

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf/btf"
)

// Function probes: the curated catalog of kernel functions that take an
// skb, and how to find, on the running kernel, which argument the skb is.

// maxSkbArg is the last argument position the programs can read the skb
// from (function.c has one program per position).
const maxSkbArg = 5

// SkbArg returns the position (1-based) of the first parameter of type
// struct sk_buff * of BTF function fn, and its number of parameters; the
// position is 0 when it takes none.
func SkbArg(fn *btf.Func) (pos, nargs int) {
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return 0, 0
	}
	for i, p := range proto.Params {
		if isSkbPtr(p.Type) {
			return i + 1, len(proto.Params)
		}
	}
	return 0, len(proto.Params)
}

// isSkbPtr reports whether t is a (qualified, typedef'd) struct sk_buff *.
func isSkbPtr(t btf.Type) bool {
	ptr, ok := btf.UnderlyingType(t).(*btf.Pointer)
	if !ok {
		return false
	}
	s, ok := btf.UnderlyingType(ptr.Target).(*btf.Struct)
	return ok && s.Name == "sk_buff"
}

// funcIndex maps the names of the kernel's BTF functions to them.
func funcIndex(spec *btf.Spec) map[string]*btf.Func {
	m := map[string]*btf.Func{}
	if spec == nil {
		return m
	}
	for t, err := range spec.All() {
		if err != nil {
			break
		}
		if f, ok := t.(*btf.Func); ok {
			if _, dup := m[f.Name]; !dup {
				m[f.Name] = f
			}
		}
	}
	return m
}

// SkbFuncs returns the names of every function in spec that takes a
// struct sk_buff * at an argument position the programs can read, sorted.
func SkbFuncs(spec *btf.Spec) []string { return skbFuncs(funcIndex(spec)) }

func skbFuncs(index map[string]*btf.Func) []string {
	var out []string
	for name, f := range index {
		if pos, _ := SkbArg(f); pos > 0 && pos <= maxSkbArg {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func checkSkbPos(name string, pos, nargs int) string {
	switch {
	case pos == 0 && nargs == 0:
		return "no function prototype in BTF"
	case pos == 0:
		return "takes no struct sk_buff * on this kernel"
	case pos > maxSkbArg:
		return fmt.Sprintf("the skb is argument %d (at most %d supported)", pos, maxSkbArg)
	}
	return ""
}
