package function

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

// TestProbeIDs: the ids function.c writes are the vocabulary's.
func TestProbeIDs(t *testing.T) {
	for p, bpf := range map[event.Probe]uint32{
		event.FuncEntry:  uint32(functionFuncProbeIdPROBE_FUNC),
		event.FuncReturn: uint32(functionFuncProbeIdPROBE_FUNC_RET),
		event.FuncClone:  uint32(functionFuncProbeIdPROBE_FUNC_CLONE),
	} {
		if uint32(p) != bpf {
			t.Errorf("%s: vocabulary id %d, BPF id %d", p, uint32(p), bpf)
		}
	}
}
