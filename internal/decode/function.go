package decode

import (
	"fmt"
	"strings"

	"github.com/skbtrail/skbtrail/internal/catalog"
	"github.com/skbtrail/skbtrail/internal/event"
)

// function names a function probe's event after its function (from the
// address in Location) and adds its facts: the return value, ipt_do_table's
// table, chain and verdict, a clone's parent.
func (d *Decoder) function(e *event.Event, r *event.Record) {
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
	e.Name = name
	e.Group = "function"
	if t := catalog.FuncByName(name); t != nil {
		e.Group = t.Group
	}
	switch e.Probe {
	case event.FuncEntry:
		e.RetFollows = r.Aux2 != 0
	case event.FuncReturn:
		if r.Reason != 0 { // ipt_do_table: hook+1 | pf<<8, table name in aux/aux2
			e.Facts.Table = event.IPTable{
				Name:    cstring8(uint64(r.Aux) | uint64(r.Aux2)<<32),
				Hook:    event.Hook(r.Reason&0xff - 1),
				Verdict: event.Verdict(uint32(r.Ret)),
			}
		}
	case event.FuncClone:
		e.Parent = uint64(r.Aux) | uint64(r.Aux2)<<32
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
