package event

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/probe"
)

func funcRecord(id uint32, addr uint64) *probe.Record {
	r := record("")
	r.Probe, r.Location = id, addr
	return r
}

func TestDecodeFunction(t *testing.T) {
	d := &Decoder{Funcs: map[uint64]string{0xffffffff81a00000: "ip_rcv", 0xffffffff81b00000: "ipt_do_table", 0xffffffff81c00000: "skb_clone"}}

	r := funcRecord(probe.FuncEntryID, 0xffffffff81a00000)
	r.Aux2 = 1
	e, err := d.Decode(encode(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if e.Probe != "ip_rcv" || e.Group != "ip" || !e.Func || !e.RetFollows || e.Return || e.Packet.Family != 4 {
		t.Errorf("entry: %+v", e)
	}

	r = funcRecord(probe.FuncReturnID, 0xffffffff81a00000)
	r.Ret = 1
	e, _ = d.Decode(encode(t, r))
	if e.Probe != "ip_rcv" || !e.Return || len(e.Facts) != 1 || e.Facts[0] != (Fact{"ret", int32(1)}) {
		t.Errorf("return: %+v", e)
	}

	// ipt_do_table: table name in aux/aux2, hook+1 | pf<<8 in reason.
	r = funcRecord(probe.FuncReturnID, 0xffffffff81b00000)
	r.Ret = 0
	r.Aux, r.Aux2 = 0x746c6966, 0x7265 // "filter"
	r.Reason = (2 + 1) | 2<<8
	e, _ = d.Decode(encode(t, r))
	want := []Fact{{"ret", int32(0)}, {"table", "filter"}, {"chain", "FORWARD"}, {"verdict", "NF_DROP"}}
	if len(e.Facts) != len(want) {
		t.Fatalf("ipt return facts %v, want %v", e.Facts, want)
	}
	for i := range want {
		if e.Facts[i] != want[i] {
			t.Errorf("ipt return fact %d = %v, want %v", i, e.Facts[i], want[i])
		}
	}

	r = funcRecord(probe.FuncCloneID, 0xffffffff81c00000)
	r.Aux, r.Aux2 = 0x00aa1000, 0xffff8881
	e, _ = d.Decode(encode(t, r))
	if e.Probe != "skb_clone" || e.Group != "life" || e.Parent != 0xffff888100aa1000 {
		t.Errorf("clone: %+v", e)
	}

	// An address the session did not attach is named from kallsyms, or
	// shown as an address.
	e, _ = d.Decode(encode(t, funcRecord(probe.FuncEntryID, 0x1234)))
	if e.Probe != "func_1234" {
		t.Errorf("unknown function named %q", e.Probe)
	}
}
