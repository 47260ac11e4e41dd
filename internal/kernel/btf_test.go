package kernel

import (
	"testing"

	"github.com/cilium/ebpf/btf"
)

func TestTracepointArgs(t *testing.T) {
	voidPtr := &btf.Pointer{Target: &btf.Void{}}
	u64 := &btf.Int{Name: "u64", Size: 8}
	tp := func(name string, params ...btf.Type) *btf.Typedef {
		proto := &btf.FuncProto{Return: &btf.Void{}}
		for _, p := range params {
			proto.Params = append(proto.Params, btf.FuncParam{Type: p})
		}
		return &btf.Typedef{Name: "btf_trace_" + name, Type: &btf.Pointer{Target: proto}}
	}
	spec := buildSpec(t,
		tp("kfree_skb", voidPtr, voidPtr, voidPtr, u64),
		tp("no_args", voidPtr),
		tp("empty"),
		&btf.Typedef{Name: "btf_trace_not_a_pointer", Type: u64},
	)

	for _, tt := range []struct {
		name string
		args int
		ok   bool
	}{
		{"kfree_skb", 3, true},
		{"no_args", 0, true},
		{"empty", 0, false},
		{"not_a_pointer", 0, false},
		{"missing", 0, false},
		{"", 0, false},
	} {
		args, ok := TracepointArgs(spec, tt.name)
		if args != tt.args || ok != tt.ok {
			t.Errorf("TracepointArgs(%q) = %d, %v; want %d, %v", tt.name, args, ok, tt.args, tt.ok)
		}
		if has := HasTracepoint(spec, tt.name); has != tt.ok {
			t.Errorf("HasTracepoint(%q) = %v, want %v", tt.name, has, tt.ok)
		}
	}
	if HasTracepoint(nil, "kfree_skb") {
		t.Error("HasTracepoint(nil spec) = true")
	}
}

func TestKernelBTF(t *testing.T) {
	spec := kernelBTF(t)
	if again, _ := BTF(); again != spec {
		t.Error("BTF() returned a different spec on the second call")
	}
	// Tracepoints every supported kernel (5.10+) has, with their argument
	// counts from include/trace/events/net.h and skb.h.
	if n, ok := TracepointArgs(spec, "netif_receive_skb"); !ok || n != 1 {
		t.Errorf("netif_receive_skb: %d args, %v; want 1, true", n, ok)
	}
	if n, ok := TracepointArgs(spec, "kfree_skb"); !ok || n < 2 {
		t.Errorf("kfree_skb: %d args, %v; want >= 2 (skb, location, ...)", n, ok)
	}
	if HasTracepoint(spec, "skbtrail_no_such_tracepoint") {
		t.Error("HasTracepoint found a tracepoint that does not exist")
	}
}
