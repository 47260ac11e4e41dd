package pcapfilter

import (
	"math/rand/v2"
	"testing"
)

// TestTranslateCopyBoundary: loads within the probes' copy of the headers
// (CopySize bytes), straddling its end and past it (read from the packet)
// give libpcap's verdicts, on packets shorter and longer than the copy, so
// that both paths of every load are taken.
func TestTranslateCopyBoundary(t *testing.T) {
	run := kernelRunner(t)
	exprs := []string{
		"ip[0] & 0xf0 = 0x40", "ip[20:2] > 1000",
		"ip[126:2] = 0x7e7f", "ip[127:2] = 0x7f80", "ip[CopySize:4] != 0",
		"ip[200] = 200", "udp[120:4] = 0x8c8d8e8f", "ip[2:2] > 100 and ip[250:2] = 0xfafb",
		"len > 129", "tcp[100] = 0 or udp[110] = 0x82",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var pkts [][]byte
	for _, n := range []int{0, 1, 20, 28, 100, 126, 127, 128, 129, 130, 131, 200, 201, 251, 252, 300} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		if n > 0 {
			p[0] = 0x45
		}
		if n > 9 {
			p[6], p[7], p[9] = 0, 0, 17 // a first fragment of udp
		}
		pkts = append(pkts, p)
		q := append([]byte(nil), p...)
		for i := 10; i < len(q); i++ {
			if rng.IntN(4) == 0 {
				q[i] = byte(rng.Uint32())
			}
		}
		pkts = append(pkts, q)
	}
	for _, expr := range exprs {
		expr = replaceCopySize(expr)
		prog, err := Compile(expr)
		if err != nil {
			t.Fatalf("%q: %v", expr, err)
		}
		body, err := Translate(prog)
		if err != nil {
			t.Fatalf("%q: translate: %v", expr, err)
		}
		if run == nil {
			continue
		}
		p, err := run.load(body)
		if err != nil {
			t.Fatalf("%q: load: %v", expr, err)
		}
		matched := 0
		for _, pkt := range pkts {
			want := Run(prog, pkt, uint32(len(pkt))) != 0
			got, err := run.run(p, pkt)
			if err != nil {
				t.Fatalf("%q on %d bytes: %v", expr, len(pkt), err)
			}
			if got != want {
				t.Errorf("%q on %d bytes: eBPF %v, libpcap %v", expr, len(pkt), got, want)
			}
			if want {
				matched++
			}
		}
		p.Close()
		if matched == 0 && expr != "ip[CopySize:4] != 0" {
			t.Logf("%q matches none of the packets", expr)
		}
	}
}

func replaceCopySize(expr string) string {
	const name = "CopySize"
	for i := 0; i+len(name) <= len(expr); i++ {
		if expr[i:i+len(name)] == name {
			return expr[:i] + "128" + expr[i+len(name):]
		}
	}
	return expr
}
