package kernel

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// kallsymsPath is where the kernel lists its symbols.
const kallsymsPath = "/proc/kallsyms"

// maxFuncSize bounds how far past its symbol an address may lie and still
// be named after it: no kernel function is a MiB long, so an address
// further away is outside any known text (or past a module's end).
const maxFuncSize = 1 << 20

// ErrHiddenAddresses is returned when /proc/kallsyms lists every address
// as 0, which the kernel does for readers it does not trust.
var ErrHiddenAddresses = errors.New("kallsyms addresses are hidden: run as root or set kernel.kptr_restrict=0")

// Symbols is the kernel's text symbols (functions) from /proc/kallsyms,
// kept compactly: one 16-byte entry and the name's bytes per symbol. A
// Symbols is read-only and safe for concurrent use.
type Symbols struct {
	syms    []symbol // sorted by address, then file order
	names   string   // all names, concatenated
	modules []string // module names; modules[0] is "" (vmlinux)

	sortOnce sync.Once
	byName   []uint32 // indexes into syms, sorted by name, then address
}

type symbol struct {
	addr uint64
	name uint32 // offset into names
	size uint16 // length of the name
	mod  uint16 // index into modules
}

// LoadSymbols returns the kernel's text symbols from /proc/kallsyms. The
// file is read and parsed once per run (it is large: a second or more
// under emulation), whoever asks first; every caller shares the result.
func LoadSymbols() (*Symbols, error) {
	s, err := loadSymbols()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// HasSymbol reports whether kallsyms lists a text symbol name; it works
// when the addresses are hidden too (names are always shown).
func HasSymbol(name string) (has, known bool) {
	s, err := loadSymbols()
	if s == nil {
		return false, false
	}
	_ = err // ErrHiddenAddresses: the names are still there
	_, has = s.Lookup(name)
	return has, true
}

var loadSymbols = sync.OnceValues(func() (*Symbols, error) {
	f, err := os.Open(kallsymsPath)
	if err != nil {
		return nil, fmt.Errorf("read kernel symbols: %w (is /proc mounted?)", err)
	}
	defer f.Close()
	s, err := parseSymbols(f)
	if err != nil {
		return s, fmt.Errorf("%s: %w", kallsymsPath, err)
	}
	return s, nil
})

// ParseSymbols reads symbols in the format of /proc/kallsyms, one per
// line: "address type name" and, for a module's symbol, a tab and
// "[module]". Only text symbols (types t, T, w and W) are kept. It fails on
// a malformed line, and with ErrHiddenAddresses when every address is 0.
func ParseSymbols(r io.Reader) (*Symbols, error) {
	s, err := parseSymbols(r)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseSymbols is ParseSymbols, but with hidden addresses it returns the
// symbols (names, with zero addresses) along with ErrHiddenAddresses.
func parseSymbols(r io.Reader) (*Symbols, error) {
	s := &Symbols{modules: []string{""}}
	var names strings.Builder
	modIndex := map[string]uint16{}
	br := bufio.NewReaderSize(r, 64<<10)
	anyAddr, lines := false, 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line %d: longer than %d bytes: not a kallsyms file", lines+1, br.Size())
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read kernel symbols: %w", err)
		}
		if len(line) > 0 {
			lines++
			addr, typ, name, mod, perr := parseSymbolLine(line)
			if perr != nil {
				return nil, fmt.Errorf("line %d: %w: not a kallsyms file", lines, perr)
			}
			anyAddr = anyAddr || addr != 0
			switch typ {
			case 't', 'T', 'w', 'W':
			default:
				continue
			}
			if names.Len()+len(name) > math.MaxUint32 {
				return nil, fmt.Errorf("line %d: names exceed 4 GiB: not a kallsyms file", lines)
			}
			sym := symbol{addr: addr, name: uint32(names.Len()), size: uint16(len(name))}
			names.Write(name)
			if len(mod) > 0 {
				i, ok := modIndex[string(mod)]
				if !ok {
					if len(s.modules) > math.MaxUint16 {
						return nil, fmt.Errorf("line %d: more than %d modules: not a kallsyms file", lines, math.MaxUint16)
					}
					i = uint16(len(s.modules))
					modIndex[string(mod)] = i
					s.modules = append(s.modules, string(mod))
				}
				sym.mod = i
			}
			s.syms = append(s.syms, sym)
		}
		if err != nil { // io.EOF
			break
		}
	}
	s.names = names.String()
	if lines > 0 && !anyAddr {
		return s, ErrHiddenAddresses
	}

	// Names are stored in file order, so their offsets order equal
	// addresses and names as the file does: stable, but faster.
	slices.SortFunc(s.syms, func(a, b symbol) int {
		return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.name, b.name))
	})
	return s, nil
}

// parseSymbolLine splits "ffffffff81000000 T _stext\t[module]\n".
func parseSymbolLine(line []byte) (addr uint64, typ byte, name, mod []byte, err error) {
	line = bytes.TrimRight(line, "\r\n")
	hex, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok || len(hex) == 0 || len(hex) > 16 {
		return 0, 0, nil, nil, errors.New("no address")
	}
	for _, c := range hex {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, 0, nil, nil, fmt.Errorf("bad address %q", hex)
		}
		addr = addr<<4 | uint64(d)
	}
	if len(rest) < 3 || rest[1] != ' ' {
		return 0, 0, nil, nil, errors.New("no symbol type and name")
	}
	typ, rest = rest[0], rest[2:]
	name, mod, _ = bytes.Cut(rest, []byte{'\t'})
	if len(name) == 0 || len(name) > math.MaxUint16 || bytes.ContainsAny(name, " \t") {
		return 0, 0, nil, nil, fmt.Errorf("bad symbol name %q", name)
	}
	if len(mod) > 0 {
		m, ok := bytes.CutPrefix(mod, []byte{'['})
		if m, ok = bytes.CutSuffix(m, []byte{']'}); !ok || len(m) == 0 {
			return 0, 0, nil, nil, fmt.Errorf("bad module %q", mod)
		}
		mod = m
	}
	return addr, typ, name, mod, nil
}

func (s *Symbols) name(sym symbol) string {
	return s.names[sym.name : sym.name+uint32(sym.size)]
}

// Symbolize names the kernel text address addr: "ip_rcv+0x1a",
// "nft_do_chain+0x4c [nf_tables]" in a module, or "0xffffffffc0a01234"
// when no symbol precedes it within 1 MiB. Of several symbols at one
// address, the first listed is used. A nil Symbols names nothing.
func (s *Symbols) Symbolize(addr uint64) string {
	if s != nil {
		// The first symbol past addr; the one before it holds addr.
		i := sort.Search(len(s.syms), func(i int) bool { return s.syms[i].addr > addr })
		if i > 0 {
			i--
			for i > 0 && s.syms[i-1].addr == s.syms[i].addr {
				i--
			}
			sym := s.syms[i]
			if off := addr - sym.addr; off < maxFuncSize {
				str := s.name(sym) + "+0x" + strconv.FormatUint(off, 16)
				if sym.mod != 0 {
					str += " [" + s.modules[sym.mod] + "]"
				}
				return str
			}
		}
	}
	return "0x" + strconv.FormatUint(addr, 16)
}

// Lookup returns the address of the text symbol name, the lowest one if
// several (static functions of different files, or modules) share it.
// The first call sorts an index of names (some tens of milliseconds for
// a whole kernel).
func (s *Symbols) Lookup(name string) (uint64, bool) {
	if s == nil {
		return 0, false
	}
	s.sortOnce.Do(func() {
		s.byName = make([]uint32, len(s.syms))
		for i := range s.byName {
			s.byName[i] = uint32(i)
		}
		slices.SortFunc(s.byName, func(a, b uint32) int {
			return cmp.Or(strings.Compare(s.name(s.syms[a]), s.name(s.syms[b])), cmp.Compare(a, b))
		})
	})
	i, ok := slices.BinarySearchFunc(s.byName, name, func(j uint32, name string) int {
		return strings.Compare(s.name(s.syms[j]), name)
	})
	if !ok {
		return 0, false
	}
	return s.syms[s.byName[i]].addr, true
}
