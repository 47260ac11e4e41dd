package counters

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		name          string
		before, after Snapshot
		want          []Change
	}{
		{"nothing moved", Snapshot{"Udp NoPorts": 3}, Snapshot{"Udp NoPorts": 3}, nil},
		{"both empty", nil, nil, nil},
		{"sorted by name", Snapshot{"Udp NoPorts": 3, "Ip InReceives": 10, "Tcp OutRsts": 1}, Snapshot{"Udp NoPorts": 6, "Ip InReceives": 12, "Tcp OutRsts": 1},
			[]Change{{"Ip InReceives", 2, 12}, {"Udp NoPorts", 3, 6}}},
		{"new counter counts from 0", Snapshot{}, Snapshot{"IcmpMsg OutType3": 2}, []Change{{"IcmpMsg OutType3", 2, 2}}},
		{"vanished counter left out", Snapshot{"dev vA rx_dropped": 5}, Snapshot{}, nil},
		{"gauge went down", Snapshot{"Tcp CurrEstab": 3}, Snapshot{"Tcp CurrEstab": 1}, []Change{{"Tcp CurrEstab", -2, 1}}},
		{"wrapped", Snapshot{"dev x rx_bytes": math.MaxUint64 - 1}, Snapshot{"dev x rx_bytes": 2}, []Change{{"dev x rx_bytes", 4, 2}}},
		{"signed field", Snapshot{"Tcp MaxConn": math.MaxUint64}, Snapshot{"Tcp MaxConn": 5}, []Change{{"Tcp MaxConn", 6, 5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Diff(tt.before, tt.after); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	for c, want := range map[Change]string{
		{"Udp NoPorts", 3, 3}:       "Udp NoPorts +3",
		{"Tcp CurrEstab", -2, 1}:    "Tcp CurrEstab -2",
		{"dev vB rx_dropped", 1, 7}: "dev vB rx_dropped +1",
	} {
		if got := c.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", c, got, want)
		}
	}
}

// TestReadDir reads the captured /proc/net in testdata/proc as Read would.
func TestReadDir(t *testing.T) {
	snap, err := readDir(filepath.Join("testdata", "proc"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Udp NoPorts", "TcpExt TCPBacklogDrop", "Ip6 InNoRoutes", "dev eth0 rx_dropped",
		"softnet dropped", "conntrack drop", "arp unresolved_discards", "ndisc unresolved_discards"} {
		if _, ok := snap[name]; !ok {
			t.Errorf("no counter %q", name)
		}
	}
}

func TestReadDirOptionalAndRequired(t *testing.T) {
	// copyWithout copies the captured files but those named in skip into a new directory.
	copyWithout := func(skip ...string) string {
		dir := t.TempDir()
		for _, src := range sources {
			if slices.Contains(skip, src.path) {
				continue
			}
			data, err := os.ReadFile(filepath.Join("testdata", "proc", src.path))
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, src.path)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}

	snap, err := readDir(copyWithout("snmp6", "stat/nf_conntrack", "stat/arp_cache", "stat/ndisc_cache"))
	if err != nil {
		t.Fatalf("optional files missing: %v", err)
	}
	if _, ok := snap["Udp NoPorts"]; !ok {
		t.Error("no Udp NoPorts without the optional files")
	}
	for _, required := range []string{"snmp", "netstat", "dev", "softnet_stat"} {
		if _, err := readDir(copyWithout(required)); err == nil {
			t.Errorf("no error without %s", required)
		}
	}

	dir := copyWithout()
	if err := os.WriteFile(filepath.Join(dir, "dev"), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readDir(dir); err == nil || !strings.Contains(err.Error(), "dev") {
		t.Errorf("malformed dev: error %v, want one naming the file", err)
	}
}
