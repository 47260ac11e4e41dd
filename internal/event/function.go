package event

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/probe"
)

// function names a function probe's event after its function (from the
// address in Location) and adds its facts: "ret" for a return, with
// "table", "chain" and "verdict" for ipt_do_table; "clone_of" for a clone.
func (d *Decoder) function(e *Event, r *probe.Record) {
	e.Func = true
	name := d.Funcs[r.Location]
	if name == "" && d.Symbols != nil {
		// fentry reports the address the kernel uses, which may
		// differ from kallsyms' (an endbr64 before it): symbolize.
		sym := d.Symbols.Symbolize(r.Location)
		if !strings.HasPrefix(sym, "0x") {
			name, _, _ = strings.Cut(sym, "+")
		}
	}
	if name == "" {
		name = fmt.Sprintf("func_%x", r.Location)
	}
	e.Probe = name
	if t := probe.FuncByName(name); t != nil {
		e.Group = t.Group
	}
	add := func(k string, v any) { e.Facts = append(e.Facts, Fact{k, v}) }
	switch r.Probe {
	case probe.FuncEntryID:
		e.RetFollows = r.Aux2 != 0
	case probe.FuncReturnID:
		e.Return = true
		add("ret", r.Ret)
		if r.Reason != 0 { // ipt_do_table: hook+1 | pf<<8, table name in aux/aux2
			table := cstring8(uint64(r.Aux) | uint64(r.Aux2)<<32)
			add("table", table)
			add("chain", ChainName(r.Reason&0xff-1))
			add("verdict", VerdictName(uint32(r.Ret)))
		}
	case probe.FuncCloneID:
		e.Parent = uint64(r.Aux) | uint64(r.Aux2)<<32
		add("clone_of", fmt.Sprintf("0x%x", e.Parent))
	}
}

func cstring8(v uint64) string {
	var b []byte
	for i := 0; i < 8; i++ {
		c := byte(v >> (8 * i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// ChainName names an iptables built-in chain by netfilter hook number.
func ChainName(hook uint32) string {
	names := []string{"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
	if int(hook) < len(names) {
		return names[hook]
	}
	return fmt.Sprintf("hook%d", hook)
}

// VerdictName names a netfilter verdict (include/uapi/linux/netfilter.h).
func VerdictName(v uint32) string {
	names := []string{"NF_DROP", "NF_ACCEPT", "NF_STOLEN", "NF_QUEUE", "NF_REPEAT", "NF_STOP"}
	if int(v&0xff) < len(names) {
		return names[v&0xff]
	}
	return fmt.Sprintf("verdict %d", v)
}
