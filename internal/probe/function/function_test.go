package function

import (
	"bytes"
	"slices"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// syntheticKernel builds a BTF spec with functions shaped like the
// kernel's, in two versions of ipt_do_table's signature.
func syntheticKernel(t *testing.T, newIpt bool) *btf.Spec {
	t.Helper()
	skb := &btf.Struct{Name: "sk_buff", Size: 232}
	skbPtr := &btf.Pointer{Target: skb}
	constSkb := &btf.Pointer{Target: &btf.Const{Type: skb}}
	netdev := &btf.Pointer{Target: &btf.Struct{Name: "net_device", Size: 8}}
	state := &btf.Pointer{Target: &btf.Struct{Name: "nf_hook_state", Size: 8}}
	table := &btf.Pointer{Target: &btf.Struct{Name: "xt_table", Size: 8}}
	voidPtr := &btf.Pointer{Target: (*btf.Void)(nil)}
	intT := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	typedefSkb := &btf.Typedef{Name: "skb_t", Type: skbPtr}
	fn := func(name string, params ...btf.Type) *btf.Func {
		var ps []btf.FuncParam
		for i, p := range params {
			ps = append(ps, btf.FuncParam{Name: string(rune('a' + i)), Type: p})
		}
		return &btf.Func{Name: name, Type: &btf.FuncProto{Return: intT, Params: ps}, Linkage: btf.GlobalFunc}
	}
	funcs := []btf.Type{
		fn("ip_rcv", skbPtr, netdev, voidPtr, netdev),
		fn("nf_hook_slow", skbPtr, state, voidPtr, intT),
		fn("tcp_v4_do_rcv", voidPtr, skbPtr),
		fn("kfree_skb_partial", constSkb, intT), // const-qualified still counts
		fn("via_typedef", intT, typedefSkb),
		fn("no_skb", intT, netdev),
		fn("too_far", intT, intT, intT, intT, intT, skbPtr),
		fn("___pskb_trim", skbPtr, intT), // three underscores: found by iteration
	}
	if newIpt {
		funcs = append(funcs, fn("ipt_do_table", voidPtr, skbPtr, state))
	} else {
		funcs = append(funcs, fn("ipt_do_table", skbPtr, state, table))
	}
	b, err := btf.NewBuilder(funcs, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestSkbArgFromBTF(t *testing.T) {
	for _, newIpt := range []bool{false, true} {
		idx := funcIndex(syntheticKernel(t, newIpt))
		want := map[string]int{
			"ip_rcv": 1, "nf_hook_slow": 1, "tcp_v4_do_rcv": 2, "kfree_skb_partial": 1,
			"via_typedef": 2, "no_skb": 0, "too_far": 6, "___pskb_trim": 1, "ipt_do_table": 1,
		}
		if newIpt {
			want["ipt_do_table"] = 2
		}
		for name, pos := range want {
			f := idx[name]
			if f == nil {
				t.Errorf("%s: not in the index", name)
				continue
			}
			if got, _ := SkbArg(f); got != pos {
				t.Errorf("newIpt=%v: SkbArg(%s) = %d, want %d", newIpt, name, got, pos)
			}
		}
		if why := checkSkbPos("too_far", 6, 6); why == "" {
			t.Errorf("skb at argument 6 accepted")
		}
		if why := checkSkbPos("no_skb", 0, 2); why == "" {
			t.Errorf("function without skb accepted")
		}
	}
}

func TestSkbFuncs(t *testing.T) {
	got := SkbFuncs(syntheticKernel(t, false))
	want := []string{"___pskb_trim", "ip_rcv", "ipt_do_table", "kfree_skb_partial", "nf_hook_slow", "tcp_v4_do_rcv", "via_typedef"}
	if !slices.Equal(got, want) {
		t.Errorf("SkbFuncs = %v, want %v", got, want)
	}
}
