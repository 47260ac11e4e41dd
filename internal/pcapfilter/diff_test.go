package pcapfilter

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// compareWithLibpcap compiles expr with both compilers and, when both
// accept it, wants the same verdict on every packet; it returns the
// number of verdicts compared. When libpcap refuses the expression ours
// must refuse it too; when ours refuses one libpcap accepts, that must be
// for needing the link layer.
func compareWithLibpcap(t testing.TB, expr string, pkts []namedPacket, cut bool) int {
	t.Helper()
	theirs, terr := libpcap(t, expr)
	ours, oerr := Compile(expr)
	switch {
	case terr != nil && oerr == nil:
		t.Errorf("%q: libpcap refuses it (%v), we accept it", expr, terr)
		return 0
	case terr != nil:
		return 0
	case oerr != nil:
		if !isLinkError(oerr) {
			t.Errorf("%q: we refuse it (%v), libpcap accepts it", expr, oerr)
		}
		return 0
	}
	n := 0
	for _, p := range pkts {
		lens := []int{len(p.data)}
		if cut {
			lens = lens[:0]
			for i := 0; i <= len(p.data); i++ {
				if i <= 140 || i == len(p.data) {
					lens = append(lens, i)
				}
			}
		}
		for _, l := range lens {
			pkt := p.data[:l]
			for _, wire := range []uint32{uint32(l), uint32(len(p.data))} {
				want := Run(theirs, pkt, wire) != 0
				got := Run(ours, pkt, wire) != 0
				n++
				if got != want {
					t.Errorf("%q on %s[:%d] (wire %d, % x): we say %v, libpcap %v", expr, p.name, l, wire, pkt, got, want)
					return n
				}
				if l == len(p.data) {
					break
				}
			}
		}
	}
	return n
}

func isLinkError(err error) bool {
	return errors.Is(err, ErrInvalid) && (strings.Contains(err.Error(), "needs the link layer") || strings.Contains(err.Error(), "is not IP"))
}

// TestAgainstLibpcap is the differential test: every expression of the
// list on every packet of the corpus and every truncation of it.
func TestAgainstLibpcap(t *testing.T) {
	pkts := corpus()
	verdicts, matched := 0, 0
	for _, expr := range exprs {
		if _, err := Compile(expr); err != nil {
			t.Errorf("%q: %v", expr, err)
			continue
		}
		verdicts += compareWithLibpcap(t, expr, pkts, true)
		ours, _ := Compile(expr)
		for _, p := range pkts {
			if Run(ours, p.data, uint32(len(p.data))) != 0 {
				matched++
			}
		}
	}
	for _, expr := range badExprs {
		_, err := Compile(expr)
		if _, terr := libpcap(t, expr); terr == nil {
			if !isLinkError(err) {
				t.Errorf("%q: libpcap accepts it; it is in the list of bad expressions", expr)
			}
		}
		if err == nil {
			t.Errorf("%q: accepted, want an error", expr)
			continue
		}
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v: want one line wrapping ErrInvalid", expr, err)
		}
	}
	// Every expression should match something and miss something, or the
	// corpus does not test it.
	t.Logf("%d expressions (and %d bad ones), %d packets, %d verdicts compared, %d full-packet matches",
		len(exprs), len(badExprs), len(pkts), verdicts, matched)
	if len(exprs) < 200 {
		t.Errorf("only %d expressions", len(exprs))
	}
}

// TestCorpusDiscriminates: each expression's verdicts on the corpus are
// not all the same (but for a few that are meant to be).
func TestCorpusDiscriminates(t *testing.T) {
	pkts := corpus()
	same := 0
	for _, expr := range exprs {
		prog, err := Compile(expr)
		if err != nil {
			continue
		}
		yes := 0
		for _, p := range pkts {
			if Run(prog, p.data, uint32(len(p.data))) != 0 {
				yes++
			}
		}
		if yes == 0 || yes == len(pkts) {
			same++
			t.Logf("%q: %d of %d packets", expr, yes, len(pkts))
		}
	}
	if same > 25 {
		t.Errorf("%d expressions do not tell the corpus's packets apart", same)
	}
}

// TestRunMatchesVM checks the interpreter against golang.org/x/net/bpf's
// on libpcap's programs where that one applies (no backward jumps, len =
// bytes captured).
func TestRunMatchesVM(t *testing.T) {
	pkts := corpus()
	n := 0
	for _, expr := range exprs {
		prog, err := libpcap(t, expr)
		if err != nil {
			continue
		}
		ins, ok := bpf.Disassemble(prog)
		if !ok {
			t.Fatalf("%q: libpcap's program does not disassemble", expr)
		}
		vm, err := bpf.NewVM(ins)
		if err != nil {
			continue // protochain's backward jump
		}
		for _, p := range pkts {
			for l := 0; l <= len(p.data) && l < 100; l++ {
				got, err := vm.Run(p.data[:l])
				if err != nil {
					break // an instruction the VM does not know (neg)
				}
				if want := Run(prog, p.data[:l], uint32(l)); uint32(got) != want {
					t.Fatalf("%q on %s[:%d]: Run %d, VM %d", expr, p.name, l, want, got)
				}
				n++
			}
		}
	}
	t.Logf("%d runs agree", n)
}
