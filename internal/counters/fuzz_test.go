package counters

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seed adds the captured file name and a few malformed inputs to f's corpus.
func seed(f *testing.F, name string, extra ...string) {
	data, err := os.ReadFile(filepath.Join("testdata", "proc", name))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	for _, e := range extra {
		f.Add([]byte(e))
	}
}

// checkNames fails when a parser succeeded with a counter name that does not
// have the shape the package documents: words separated by single spaces.
func checkNames(t *testing.T, snap Snapshot, err error, prefix string, minWords int) {
	if err != nil {
		if snap != nil {
			t.Fatalf("counters %v returned together with error %v", snap, err)
		}
		return
	}
	for name := range snap {
		if !strings.HasPrefix(name, prefix) || len(strings.Fields(name)) < minWords || strings.Join(strings.Fields(name), " ") != name {
			t.Fatalf("counter name %q is not %d+ words starting with %q", name, minWords, prefix)
		}
	}
}

func FuzzParseSNMP(f *testing.F) {
	seed(f, "snmp", "Udp: NoPorts\nUdp: -9223372036854775809\n", "a:\na:")
	seed(f, "netstat")
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ParseSNMP(bytes.NewReader(data))
		checkNames(t, snap, err, "", 1)
	})
}

func FuzzParseSNMP6(f *testing.F) {
	seed(f, "snmp6", "6 1\n", "Ip6 1\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ParseSNMP6(bytes.NewReader(data))
		checkNames(t, snap, err, "", 1)
	})
}

func FuzzParseDev(f *testing.F) {
	seed(f, "dev", "\n||\n:\n", "\n|a|\nx:1\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ParseDev(bytes.NewReader(data))
		checkNames(t, snap, err, "dev ", 3)
	})
}

func FuzzParseSoftnet(f *testing.F) {
	seed(f, "softnet_stat", "ffffffff ffffffff\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ParseSoftnet(bytes.NewReader(data))
		checkNames(t, snap, err, "softnet ", 2)
	})
}

func FuzzParseStat(f *testing.F) {
	seed(f, "stat/nf_conntrack", "entries\nffffffffffffffff\nffffffffffffffff\n")
	seed(f, "stat/arp_cache")
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, err := ParseStat(bytes.NewReader(data), "ct")
		checkNames(t, snap, err, "ct ", 2)
	})
}
