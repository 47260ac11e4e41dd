package pcapfilter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/bpf"
)

// The oracle is libpcap itself, through tcpdump: "tcpdump -ddd -r FILE"
// prints the program libpcap compiles for FILE's link type, here RAW
// (101: packets start at the IP header), with tcpdump's default
// optimization, as decimal instructions. No cgo in the repository.

var oracle struct {
	sync.Mutex
	dir   string
	cache map[string]oracleResult
}

type oracleResult struct {
	prog []bpf.RawInstruction
	err  error // libpcap refused the expression
}

// errLibpcap marks libpcap's refusal of an expression.
var errLibpcap = errors.New("libpcap refuses")

// needTcpdump finds tcpdump; without it the test skips, except in CI,
// where it fails.
func needTcpdump(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("tcpdump")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tcpdump is the oracle of this test (libpcap's compiler) and is missing: apt-get install tcpdump")
		}
		t.Skip("tcpdump (the oracle: libpcap's compiler) is not installed: apt-get install tcpdump")
	}
	return p
}

// libpcap compiles expr with libpcap for raw IP.
func libpcap(t testing.TB, expr string) ([]bpf.RawInstruction, error) {
	t.Helper()
	bin := needTcpdump(t)
	oracle.Lock()
	defer oracle.Unlock()
	if r, ok := oracle.cache[expr]; ok {
		return r.prog, r.err
	}
	if oracle.dir == "" {
		d, err := os.MkdirTemp("", "pcapfilter-oracle")
		if err != nil {
			t.Fatal(err)
		}
		// A pcap file header: magic, v2.4, snaplen 262144, link type RAW.
		hdr := []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 101, 0, 0, 0}
		if err := os.WriteFile(filepath.Join(d, "raw.pcap"), hdr, 0o644); err != nil {
			t.Fatal(err)
		}
		oracle.dir = d
		oracle.cache = map[string]oracleResult{}
	}
	ef := filepath.Join(oracle.dir, "expr")
	if err := os.WriteFile(ef, []byte(expr), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-ddd", "-r", filepath.Join(oracle.dir, "raw.pcap"), "-F", ef)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var r oracleResult
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("tcpdump: %v", err)
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndex(msg, "tcpdump: "); i >= 0 {
			msg = msg[i+len("tcpdump: "):]
		}
		r.err = fmt.Errorf("%w: %s", errLibpcap, msg)
	} else {
		r.prog = parseDDD(t, stdout.String())
	}
	oracle.cache[expr] = r
	return r.prog, r.err
}

func parseDDD(t testing.TB, s string) []bpf.RawInstruction {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(s))
	var out []bpf.RawInstruction
	first := true
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if first {
			first = false
			var err error
			if n, err = strconv.Atoi(f[0]); err != nil {
				t.Fatalf("tcpdump -ddd: %q", s)
			}
			continue
		}
		if len(f) != 4 {
			t.Fatalf("tcpdump -ddd line %q", sc.Text())
		}
		var v [4]uint64
		for i := range f {
			x, err := strconv.ParseUint(f[i], 10, 32)
			if err != nil {
				t.Fatalf("tcpdump -ddd line %q", sc.Text())
			}
			v[i] = x
		}
		out = append(out, bpf.RawInstruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])})
	}
	if len(out) != n {
		t.Fatalf("tcpdump -ddd: %d instructions, said %d", len(out), n)
	}
	return out
}
