package kernel

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func parseFile(t *testing.T, path string) *Symbols {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := ParseSymbols(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSymbolize(t *testing.T) {
	s := parseFile(t, "testdata/kallsyms")
	for _, tt := range []struct {
		addr uint64
		want string
	}{
		{0, "0x0"},
		{0xffffffff80ffffff, "0xffffffff80ffffff"},
		{0xffffffff81000000, "_stext+0x0"}, // first of the aliases
		{0xffffffff81000001, "_stext+0x1"},
		{0xffffffff81000014, "__pfx_startup_64+0x4"},
		{0xffffffff81000020, "startup_64+0x0"},
		{0xffffffff81001008, "arch_weak+0x8"},
		{0xffffffff81002fff, "weak_local+0xfff"},
		{0xffffffff81003000, "weak_local+0x1000"}, // data symbols are skipped
		{0xffffffff81006abc, "ip_rcv+0xabc"},
		{0xffffffff81007004, "_etext+0x4"},
		{0xffffffff82000000, "0xffffffff82000000"}, // 1 MiB past _etext
		{0xffffffffc0201010, "nft_init+0x10 [nf_tables]"},
		{0xffffffffc0203004, "nft_do_chain+0x4 [nf_tables]"},
		{0xffffffffc0300001, "ovs_vport_receive+0x1 [openvswitch]"},
		{0xffffffffc0302010, "dup_static+0x1010 [openvswitch]"},
		{^uint64(0), "0xffffffffffffffff"},
	} {
		if got := s.Symbolize(tt.addr); got != tt.want {
			t.Errorf("Symbolize(%#x) = %q, want %q", tt.addr, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	s := parseFile(t, "testdata/kallsyms")
	for _, tt := range []struct {
		name string
		addr uint64
		ok   bool
	}{
		{"ip_rcv", 0xffffffff81006000, true},
		{"_text", 0xffffffff81000000, true},
		{"weak_local", 0xffffffff81002000, true},
		{"dup_static", 0xffffffff81004000, true}, // the lowest
		{"nft_do_chain", 0xffffffffc0203000, true},
		{"some_data", 0, false}, // not text
		{"__ksymtab_ip_rcv", 0, false},
		{"ovs_data", 0, false},
		{"missing", 0, false},
		{"", 0, false},
	} {
		addr, ok := s.Lookup(tt.name)
		if addr != tt.addr || ok != tt.ok {
			t.Errorf("Lookup(%q) = %#x, %v; want %#x, %v", tt.name, addr, ok, tt.addr, tt.ok)
		}
	}
}

func TestParseSymbolsErrors(t *testing.T) {
	for _, tt := range []struct {
		name, input, err string
	}{
		{"hidden", "0000000000000000 T _stext\n0000000000000000 t ip_rcv\t[mod]\n", ErrHiddenAddresses.Error()},
		{"no type", "ffffffff81000000\n", "line 1: no address"},
		{"bad hex", "ffffffff8100000g T x\n", "line 1: bad address"},
		{"long hex", "1ffffffff81000000 T x\n", "line 1: no address"},
		{"no name", "ffffffff81000000 T \n", "line 1: no symbol type and name"},
		{"space in name", "ffffffff81000000 T a b\n", "line 1: bad symbol name"},
		{"bad module", "ok\n", "line 1: no address"},
		{"unclosed module", "ffffffff81000000 T x\n1 t y\t[mod\n", "line 2: bad module"},
		{"long line", strings.Repeat("f", 70000), "line 1: longer than"},
	} {
		_, err := ParseSymbols(strings.NewReader(tt.input))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: ParseSymbols error %v, want %q", tt.name, err, tt.err)
		}
	}
	if _, err := ParseSymbols(strings.NewReader("0 T a\n")); !errors.Is(err, ErrHiddenAddresses) {
		t.Errorf("hidden: error %v does not wrap ErrHiddenAddresses", err)
	}

	// Valid edge cases: empty input, no final newline, CRLF.
	for _, input := range []string{"", "ffffffff81000000 T x", "ffffffff81000000 T x\r\n"} {
		s, err := ParseSymbols(strings.NewReader(input))
		if err != nil {
			t.Errorf("ParseSymbols(%q): %v", input, err)
			continue
		}
		if input != "" && s.Symbolize(0xffffffff81000001) != "x+0x1" {
			t.Errorf("ParseSymbols(%q): Symbolize = %q", input, s.Symbolize(0xffffffff81000001))
		}
	}

	var nilSymbols *Symbols
	if got := nilSymbols.Symbolize(0x10); got != "0x10" {
		t.Errorf("nil Symbolize = %q", got)
	}
	if _, ok := nilSymbols.Lookup("x"); ok {
		t.Error("nil Lookup found a symbol")
	}
}

func TestLoadSymbols(t *testing.T) {
	requireRoot(t)
	s, err := LoadSymbols()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d text symbols, %d modules, %d bytes of names", len(s.syms), len(s.modules)-1, len(s.names))
	for _, name := range []string{"_stext", "netif_receive_skb", "ip_rcv"} {
		addr, ok := s.Lookup(name)
		if !ok {
			t.Errorf("Lookup(%q) failed", name)
			continue
		}
		if got := s.Symbolize(addr + 4); !strings.HasPrefix(got, name+"+0x4") && !strings.HasSuffix(got, "+0x4") {
			t.Errorf("Symbolize(%s+4) = %q", name, got)
		}
	}
	if addr, ok := s.Lookup("ip_rcv"); ok {
		if got := s.Symbolize(addr + 0x10); got != "ip_rcv+0x10" {
			t.Errorf("Symbolize(ip_rcv+0x10) = %q", got)
		}
	}
	// A module symbol, if any module is loaded.
	for _, sym := range s.syms {
		if sym.mod != 0 {
			want := s.name(sym) + "+0x0 [" + s.modules[sym.mod] + "]"
			if got := s.Symbolize(sym.addr); !strings.HasSuffix(got, "+0x0 ["+s.modules[sym.mod]+"]") {
				t.Errorf("Symbolize(%#x) = %q, want %q or an alias", sym.addr, got, want)
			}
			break
		}
	}
}

func BenchmarkParseSymbols(b *testing.B) {
	data, err := os.ReadFile(kallsymsPath)
	if err != nil || !bytes.Contains(data, []byte("ip_rcv")) {
		b.Skip("no readable /proc/kallsyms")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSymbols(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseSymbols(f *testing.F) {
	seed, err := os.ReadFile("testdata/kallsyms")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed, uint64(0xffffffff81006010), "ip_rcv")
	f.Add([]byte("0 T a\n"), uint64(0), "a")
	f.Add([]byte("ffffffffffffffff T end\t[m]\n1 t start"), ^uint64(0), "end")
	f.Fuzz(func(t *testing.T, data []byte, addr uint64, name string) {
		s, err := ParseSymbols(bytes.NewReader(data))
		if err != nil {
			return
		}
		got := s.Symbolize(addr)
		if got == "" {
			t.Fatalf("Symbolize(%#x) is empty", addr)
		}
		if a, ok := s.Lookup(name); ok {
			if sym := s.Symbolize(a); !strings.Contains(sym, "+0x0") {
				t.Fatalf("Lookup(%q) = %#x, but Symbolize gives %q", name, a, sym)
			}
		}
	})
}
