package kernel

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf/btf"
)

// subsysShift is SKB_DROP_REASON_SUBSYS_SHIFT (include/net/dropreason.h):
// since Linux 6.4 the high 16 bits of a drop reason name the subsystem
// that defined it (enum skb_drop_reason_subsys), 0 being the core.
const subsysShift = 16

// Reason is a drop reason the kernel names.
type Reason struct {
	Code uint32
	Name string // as in the kernel, without SKB_DROP_REASON_: "NO_SOCKET"
}

// Reasons maps the drop reasons passed to kfree_skb (the tracepoint's
// reason field) to the kernel's names for them.
//
// Core reasons come from the BTF enum skb_drop_reason. Subsystem reasons
// (Linux 6.4+: mac80211, openvswitch, ...) have the subsystem from enum
// skb_drop_reason_subsys in their high 16 bits; their names come from the
// subsystem's own enum (see LoadReasons), looked up the first time a code of
// a subsystem is named or All is called: that call may take a few hundred
// milliseconds, once, so that loading stays cheap.
//
// A nil or zero Reasons, as on kernels before 5.17 that have no drop
// reasons, names nothing: Name returns "" for 0 (no reason given) and
// UNKNOWN_<code> otherwise. A Reasons is safe for concurrent use.
type Reasons struct {
	core   map[uint32]string // core reasons, subsystem 0
	subsys map[uint16]string // subsystem id → name without SKB_DROP_REASON_SUBSYS_

	once   sync.Once
	base   *btf.Spec                         // vmlinux BTF, for subsystem enums
	module func(string, *btf.Spec) *btf.Spec // loads a module's BTF, or nil
	ext    map[uint32]string                 // subsystem reasons, filled by once
}

// LoadReasons reads the drop reason names from the kernel BTF spec
// (see BTF): enum skb_drop_reason, whose names lose their SKB_DROP_REASON_
// or SKB_ prefix (SKB_DROP_REASON_NO_SOCKET is NO_SOCKET, SKB_CONSUMED is
// CONSUMED) and whose markers (MAX, SUBSYS_MASK) are left out.
//
// Subsystem reasons are found without knowing any subsystem: for
// subsystem S (enum skb_drop_reason_subsys) with base S<<16, the reasons
// are the values in [base, base+0xffff] of every enum whose name contains
// "drop_reason" and that has a value equal to base (the kernel's
// convention, e.g. ovs_drop_reason and mac80211_drop_reason), except names
// that start with "_" or end in "_MAX". Such enums are searched first in
// the BTF of a loaded module named after the subsystem (OPENVSWITCH is
// module openvswitch, MAC80211_UNUSABLE is mac80211), then in vmlinux.
// Names keep their enum spelling: OVS_DROP_LAST_ACTION, RX_DROP_U_REPLAY.
// A subsystem reason without a name is shown as SUBSYS:0xNNNN, e.g.
// OPENVSWITCH:0x0001.
//
// A kernel without enum skb_drop_reason (before 5.17) is no error: the
// Reasons is empty. spec must stay unmodified while the Reasons is used.
func LoadReasons(spec *btf.Spec) (*Reasons, error) {
	return loadReasons(spec, loadModuleBTF)
}

func loadReasons(spec *btf.Spec, module func(string, *btf.Spec) *btf.Spec) (*Reasons, error) {
	if spec == nil {
		return nil, errors.New("load drop reasons: no BTF spec: load it with kernel.BTF first")
	}
	r := &Reasons{core: map[uint32]string{}, subsys: map[uint16]string{}, base: spec, module: module}

	enum, err := enumByName(spec, "skb_drop_reason")
	if err != nil {
		return nil, err
	}
	if enum == nil {
		return r, nil
	}
	for _, v := range enum.Values {
		name, ok := strings.CutPrefix(v.Name, "SKB_DROP_REASON_")
		if !ok {
			name = strings.TrimPrefix(v.Name, "SKB_")
		}
		if v.Value>>subsysShift != 0 || name == "MAX" || name == "" {
			continue // SUBSYS_MASK and the like are masks, not reasons
		}
		if _, dup := r.core[uint32(v.Value)]; !dup {
			r.core[uint32(v.Value)] = name
		}
	}

	enum, err = enumByName(spec, "skb_drop_reason_subsys")
	if err != nil {
		return nil, err
	}
	if enum == nil {
		return r, nil // before 6.4
	}
	for _, v := range enum.Values {
		name := strings.TrimPrefix(v.Name, "SKB_DROP_REASON_SUBSYS_")
		if v.Value == 0 || v.Value>>subsysShift != 0 || name == "NUM" || name == "" {
			continue // CORE is subsystem 0, NUM counts them
		}
		r.subsys[uint16(v.Value)] = name
	}
	return r, nil
}

// enumByName returns the enum called name, or nil when BTF has none.
func enumByName(spec *btf.Spec, name string) (*btf.Enum, error) {
	var enum *btf.Enum
	err := spec.TypeByName(name, &enum)
	if errors.Is(err, btf.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read BTF enum %s: %w (is the kernel BTF at %s intact?)", name, err, vmlinuxBTF)
	}
	return enum, nil
}

// Name returns the kernel's name for the drop reason code: "NO_SOCKET",
// "OVS_DROP_LAST_ACTION", "OPENVSWITCH:0x0042" for a subsystem reason the
// kernel BTF does not name, and "UNKNOWN_<code>" (decimal) for a code the
// kernel does not know. A Reasons that names nothing (nil, or a kernel
// before 5.17) returns "" for code 0, the value a kernel without drop
// reasons reports.
func (r *Reasons) Name(code uint32) string {
	if r == nil || len(r.core) == 0 {
		if code == 0 {
			return ""
		}
		return unknownReason(code)
	}
	id := uint16(code >> subsysShift)
	if id == 0 {
		if name, ok := r.core[code]; ok {
			return name
		}
		return unknownReason(code)
	}
	subsys, ok := r.subsys[id]
	if !ok {
		return unknownReason(code)
	}
	if name, ok := r.extended()[code]; ok {
		return name
	}
	return fmt.Sprintf("%s:0x%04x", subsys, code&(1<<subsysShift-1))
}

func unknownReason(code uint32) string {
	return "UNKNOWN_" + strconv.FormatUint(uint64(code), 10)
}

// All returns every reason the kernel names, core and subsystem, sorted
// by code. It is empty for a nil Reasons or a kernel before 5.17.
func (r *Reasons) All() []Reason {
	if r == nil {
		return nil
	}
	all := make([]Reason, 0, len(r.core))
	for code, name := range r.core {
		all = append(all, Reason{code, name})
	}
	for code, name := range r.extended() {
		all = append(all, Reason{code, name})
	}
	slices.SortFunc(all, func(a, b Reason) int { return cmp.Compare(a.Code, b.Code) })
	return all
}

// extended returns the subsystem reasons, looking them up on first use.
func (r *Reasons) extended() map[uint32]string {
	r.once.Do(func() {
		if len(r.subsys) == 0 || r.base == nil {
			return
		}
		// Decoding every vmlinux type costs ~30 MB: do it on a copy that
		// is dropped afterwards, so that the shared spec stays small.
		base := r.base.Copy()
		r.ext = map[uint32]string{}
		missing := map[uint16]string{}
		for id, name := range r.subsys {
			if !r.scanModules(id, name, base) {
				missing[id] = name
			}
		}
		if len(missing) > 0 {
			scanSubsysEnums(base, missing, r.ext)
		}
	})
	return r.ext
}

// scanModules looks for the names of subsystem id in the BTF of loaded
// modules named after it, and reports whether it found any.
func (r *Reasons) scanModules(id uint16, name string, base *btf.Spec) bool {
	if r.module == nil {
		return false
	}
	found := false
	for _, mod := range moduleNames(name) {
		if spec := r.module(mod, base); spec != nil {
			n := len(r.ext)
			scanSubsysEnums(spec, map[uint16]string{id: name}, r.ext)
			found = found || len(r.ext) > n
		}
	}
	return found
}

// moduleNames derives the kernel modules that may define subsystem name:
// its lower-case name and every prefix of it that ends before a "_"
// (MAC80211_UNUSABLE: mac80211_unusable, mac80211).
func moduleNames(subsys string) []string {
	name := strings.ToLower(subsys)
	mods := []string{name}
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '_' {
			mods = append(mods, name[:i])
		}
	}
	return mods
}

// scanSubsysEnums adds to names the subsystem reasons that the enums of
// spec define for the subsystems in want (see LoadReasons).
func scanSubsysEnums(spec *btf.Spec, want map[uint16]string, names map[uint32]string) {
	for typ, err := range spec.All() {
		if err != nil {
			return // best effort: unnamed codes print as SUBSYS:0xNNNN
		}
		enum, ok := typ.(*btf.Enum)
		if !ok || !strings.Contains(enum.Name, "drop_reason") || strings.HasPrefix(enum.Name, "skb_drop_reason") {
			continue
		}
		for id := range want {
			base := uint64(id) << subsysShift
			if !slices.ContainsFunc(enum.Values, func(v btf.EnumValue) bool { return v.Value == base }) {
				continue
			}
			for _, v := range enum.Values {
				if v.Value>>subsysShift != uint64(id) || strings.HasPrefix(v.Name, "_") || strings.HasSuffix(v.Name, "_MAX") {
					continue
				}
				if _, dup := names[uint32(v.Value)]; !dup {
					names[uint32(v.Value)] = v.Name
				}
			}
		}
	}
}

// loadModuleBTF returns the BTF of the loaded kernel module mod, split
// against base, or nil when the module is not loaded or has no BTF.
func loadModuleBTF(mod string, base *btf.Spec) *btf.Spec {
	path := filepath.Join(filepath.Dir(vmlinuxBTF), mod)
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	spec, err := btf.LoadSplitSpec(path, base)
	if err != nil {
		return nil
	}
	return spec
}
