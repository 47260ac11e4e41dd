package kernel

import (
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// reasonTypes mimics the BTF of a 6.x kernel with openvswitch and
// mac80211 built in (include/net/dropreason*.h, net/openvswitch/drop.h,
// net/mac80211/drop.h).
func reasonTypes() []btf.Type {
	return []btf.Type{
		enum("skb_drop_reason",
			"SKB_NOT_DROPPED_YET", 0, "SKB_CONSUMED", 1,
			"SKB_DROP_REASON_NOT_SPECIFIED", 2, "SKB_DROP_REASON_NO_SOCKET", 3,
			"SKB_DROP_REASON_NETFILTER_DROP", 12, "SKB_DROP_REASON_MAX", 13,
			"SKB_DROP_REASON_SUBSYS_MASK", 0xffff0000),
		enum("skb_drop_reason_subsys",
			"SKB_DROP_REASON_SUBSYS_CORE", 0, "SKB_DROP_REASON_SUBSYS_MAC80211_UNUSABLE", 1,
			"SKB_DROP_REASON_SUBSYS_OPENVSWITCH", 2, "SKB_DROP_REASON_SUBSYS_MODULE_ONLY", 3,
			"SKB_DROP_REASON_SUBSYS_NUM", 4),
		enum("ovs_drop_reason",
			"__OVS_DROP_REASON", 0x20000, "OVS_DROP_LAST_ACTION", 0x20001,
			"OVS_DROP_ACTION_ERROR", 0x20002, "OVS_DROP_MAX", 0x20003),
		enum("___mac80211_drop_reason",
			"___RX_CONTINUE", 1, "___RX_QUEUED", 0,
			"___RX_DROP_UNUSABLE", 0x10000, "___RX_DROP_U_MIC_FAIL", 0x10001),
		enum("mac80211_drop_reason",
			"RX_CONTINUE", 1, "RX_QUEUED", 0,
			"RX_DROP_UNUSABLE", 0x10000, "RX_DROP_U_MIC_FAIL", 0x10001),
		// Not drop reasons, though values fall in subsystem ranges.
		enum("some_flags", "FLAG_A", 0x10000, "FLAG_B", 0x10002),
		enum("other_drop_reason", "OTHER_X", 0x20005),
	}
}

func TestReasons(t *testing.T) {
	spec := buildSpec(t, reasonTypes()...)
	module := buildSpec(t, enum("module_only_drop_reason",
		"__MODULE_ONLY_DROP", 0x30000, "MODULE_ONLY_DROP_FOO", 0x30001))
	var loaded []string
	r, err := loadReasons(spec, func(mod string, _ *btf.Spec) *btf.Spec {
		loaded = append(loaded, mod)
		if mod == "module" {
			return module
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		code uint32
		want string
	}{
		{0, "NOT_DROPPED_YET"},
		{1, "CONSUMED"},
		{2, "NOT_SPECIFIED"},
		{3, "NO_SOCKET"},
		{12, "NETFILTER_DROP"},
		{13, "UNKNOWN_13"}, // MAX is no reason
		{4, "UNKNOWN_4"},
		{0xffff0000, "UNKNOWN_4294901760"},
		{0x10000, "RX_DROP_UNUSABLE"},
		{0x10001, "RX_DROP_U_MIC_FAIL"},
		{0x10002, "MAC80211_UNUSABLE:0x0002"},
		{0x20000, "OPENVSWITCH:0x0000"},
		{0x20001, "OVS_DROP_LAST_ACTION"},
		{0x20002, "OVS_DROP_ACTION_ERROR"},
		{0x20003, "OPENVSWITCH:0x0003"}, // OVS_DROP_MAX is no reason
		{0x20005, "OPENVSWITCH:0x0005"}, // other_drop_reason lacks the base
		{0x30001, "MODULE_ONLY_DROP_FOO"},
		{0x40001, "UNKNOWN_262145"}, // NUM is no subsystem
	} {
		if got := r.Name(tt.code); got != tt.want {
			t.Errorf("Name(%#x) = %q, want %q", tt.code, got, tt.want)
		}
	}

	for _, mod := range []string{"openvswitch", "mac80211_unusable", "mac80211", "module_only", "module"} {
		if !slices.Contains(loaded, mod) {
			t.Errorf("module %s not tried; tried %v", mod, loaded)
		}
	}

	all := r.All()
	if !slices.IsSortedFunc(all, func(a, b Reason) int { return int(a.Code) - int(b.Code) }) {
		t.Errorf("All() not sorted: %v", all)
	}
	want := []Reason{{0, "NOT_DROPPED_YET"}, {1, "CONSUMED"}, {2, "NOT_SPECIFIED"}, {3, "NO_SOCKET"},
		{12, "NETFILTER_DROP"}, {0x10000, "RX_DROP_UNUSABLE"}, {0x10001, "RX_DROP_U_MIC_FAIL"},
		{0x20001, "OVS_DROP_LAST_ACTION"}, {0x20002, "OVS_DROP_ACTION_ERROR"}, {0x30001, "MODULE_ONLY_DROP_FOO"}}
	if !slices.Equal(all, want) {
		t.Errorf("All() = %v\nwant    %v", all, want)
	}
}

func TestReasonsWithoutEnum(t *testing.T) {
	// Kernels before 5.17 have no enum skb_drop_reason.
	spec := buildSpec(t, enum("unrelated", "A", 1))
	r, err := LoadReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	var zero Reasons
	for name, r := range map[string]*Reasons{"loaded": r, "nil": nil, "zero": &zero} {
		if got := r.Name(0); got != "" {
			t.Errorf("%s: Name(0) = %q, want empty", name, got)
		}
		if got := r.Name(3); got != "UNKNOWN_3" {
			t.Errorf("%s: Name(3) = %q, want UNKNOWN_3", name, got)
		}
		if got := r.Name(0x20001); got != "UNKNOWN_131073" {
			t.Errorf("%s: Name(0x20001) = %q, want UNKNOWN_131073", name, got)
		}
		if all := r.All(); len(all) != 0 {
			t.Errorf("%s: All() = %v, want none", name, all)
		}
	}
	if _, err := LoadReasons(nil); err == nil {
		t.Error("LoadReasons(nil) succeeded")
	}
}

func TestReasonsKernel(t *testing.T) {
	spec := kernelBTF(t)
	r, err := LoadReasons(spec)
	if err != nil {
		t.Fatal(err)
	}
	all := r.All()
	var e *btf.Enum
	if spec.TypeByName("skb_drop_reason", &e) != nil {
		if len(all) != 0 {
			t.Fatalf("no enum skb_drop_reason, yet All() = %v", all)
		}
		t.Log("kernel has no drop reasons (before 5.17): All() is empty, as it must be")
		return
	}
	byName := map[string]uint32{}
	for _, reason := range all {
		if reason.Name == "" || strings.HasPrefix(reason.Name, "SKB_DROP_REASON_") || strings.HasPrefix(reason.Name, "UNKNOWN_") {
			t.Errorf("bad name %q for code %d", reason.Name, reason.Code)
		}
		if got := r.Name(reason.Code); got != reason.Name {
			t.Errorf("Name(%d) = %q, All() says %q", reason.Code, got, reason.Name)
		}
		byName[reason.Name] = reason.Code
	}
	// Reasons every kernel with the enum has (5.17+).
	for _, name := range []string{"NOT_SPECIFIED", "NO_SOCKET", "NETFILTER_DROP", "TCP_CSUM"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("kernel reasons lack %s", name)
		}
	}
	for _, name := range []string{"MAX", "SUBSYS_MASK"} {
		if _, ok := byName[name]; ok {
			t.Errorf("marker %s listed as a reason", name)
		}
	}
	for id, name := range r.subsys {
		code := uint32(id)<<subsysShift | 0xfffe
		if got, want := r.Name(code), name+":0xfffe"; got != want {
			t.Errorf("Name(%#x) = %q, want %q", code, got, want)
		}
	}
	t.Logf("%d reasons, last %v; subsystems %v", len(all), all[len(all)-1], r.subsys)
	if r.Name(0xfff0) != "UNKNOWN_65520" {
		t.Errorf("Name(0xfff0) = %q", r.Name(0xfff0))
	}
}
