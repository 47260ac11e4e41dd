package decode

import (
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

func funcRecord(id event.Probe, addr uint64) *event.Record {
	r := record("")
	r.Probe, r.Location = uint32(id), addr
	return r
}

func TestDecodeFunction(t *testing.T) {
	d := &Decoder{Funcs: map[uint64]string{0xffffffff81a00000: "ip_rcv", 0xffffffff81b00000: "ipt_do_table", 0xffffffff81c00000: "skb_clone"}}

	r := funcRecord(event.FuncEntry, 0xffffffff81a00000)
	r.Aux2 = 1
	e, err := d.Decode(encode(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if e.Name != "ip_rcv" || e.Group != "ip" || !e.Func() || !e.RetFollows || e.Return() || e.Packet.Family != 4 {
		t.Errorf("entry: %+v", e)
	}

	r = funcRecord(event.FuncReturn, 0xffffffff81a00000)
	r.Ret = 1
	e, _ = d.Decode(encode(t, r))
	if e.Name != "ip_rcv" || !e.Return() || len(e.Fields()) != 1 || e.Fields()[0] != (event.Field{Key: "ret", Value: int32(1)}) {
		t.Errorf("return: %+v", e)
	}

	// ipt_do_table: table name in aux/aux2, hook+1 | pf<<8 in reason.
	r = funcRecord(event.FuncReturn, 0xffffffff81b00000)
	r.Ret = 0
	r.Aux, r.Aux2 = 0x746c6966, 0x7265 // "filter"
	r.Reason = (2 + 1) | 2<<8
	e, _ = d.Decode(encode(t, r))
	want := []event.Field{{Key: "ret", Value: int32(0)}, {Key: "nf_table", Value: "filter"}, {Key: "nf_chain", Value: "FORWARD"}, {Key: "nf_verdict", Value: "NF_DROP"}}
	got := e.Fields()
	if len(got) != len(want) {
		t.Fatalf("ipt return fields %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ipt return field %d = %v, want %v", i, got[i], want[i])
		}
	}
	if e.Facts.Table != (event.IPTable{Name: "filter", Hook: event.HookForward, Verdict: event.VerdictDrop}) {
		t.Errorf("ipt table = %+v", e.Facts.Table)
	}

	r = funcRecord(event.FuncClone, 0xffffffff81c00000)
	r.Aux, r.Aux2 = 0x00aa1000, 0xffff8881
	e, _ = d.Decode(encode(t, r))
	if e.Name != "skb_clone" || e.Group != "life" || e.Parent != 0xffff888100aa1000 {
		t.Errorf("clone: %+v", e)
	}

	// An address the session did not attach is named from kallsyms, or
	// shown as an address.
	e, _ = d.Decode(encode(t, funcRecord(event.FuncEntry, 0x1234)))
	if e.Name != "func_1234" || e.Group != "function" {
		t.Errorf("unknown function named %q (group %q)", e.Name, e.Group)
	}
}
