package counters

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// open returns a captured file of testdata/proc, a copy of this machine's
// /proc/net taken when the tests were written.
func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "proc", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseCaptured(t *testing.T) {
	tests := []struct {
		file  string
		parse func(*os.File) (Snapshot, error)
		min   int               // at least this many counters
		want  map[string]uint64 // a sample of them
	}{
		{"snmp", func(f *os.File) (Snapshot, error) { return ParseSNMP(f) }, 80, map[string]uint64{
			"Ip Forwarding":         2,
			"Ip InReceives":         11784,
			"Udp NoPorts":           0,
			"Udp OutDatagrams":      83,
			"IcmpMsg InType3":       1,
			"Tcp MaxConn":           math.MaxUint64, // printed as -1
			"UdpLite NoPorts":       0,
			"Icmp OutRateLimitHost": 0,
		}},
		{"netstat", func(f *os.File) (Snapshot, error) { return ParseSNMP(f) }, 200, map[string]uint64{
			"TcpExt TCPBacklogDrop": 0,
			"TcpExt DelayedACKs":    16,
			"IpExt InOctets":        487670303,
			"IpExt InNoRoutes":      0,
		}},
		{"snmp6", func(f *os.File) (Snapshot, error) { return ParseSNMP6(f) }, 90, map[string]uint64{
			"Ip6 InReceives":   1,
			"Ip6 InNoRoutes":   0,
			"Icmp6 OutType135": 4,
			"Udp6 NoPorts":     0,
			"UdpLite6 NoPorts": 0,
		}},
		{"dev", func(f *os.File) (Snapshot, error) { return ParseDev(f) }, 4 * 16, map[string]uint64{
			"dev lo rx_bytes":         13089,
			"dev lo tx_packets":       59,
			"dev eth0 rx_bytes":       487821590,
			"dev eth0 rx_dropped":     0,
			"dev eth0 multicast":      0,
			"dev eth0 collisions":     0,
			"dev eth0 tx_fifo_errors": 0,
			"dev ifb1 tx_compressed":  0,
		}},
		{"softnet_stat", func(f *os.File) (Snapshot, error) { return ParseSoftnet(f) }, 5, map[string]uint64{
			"softnet processed":        0x970 + 0x36ad,
			"softnet dropped":          0,
			"softnet time_squeeze":     1 + 3,
			"softnet received_rps":     0,
			"softnet flow_limit_count": 0,
		}},
		{"stat/arp_cache", func(f *os.File) (Snapshot, error) { return ParseStat(f, "arp") }, 13, map[string]uint64{
			"arp entries":             8, // a gauge: not summed over the CPUs
			"arp allocs":              0xd2 + 0x100,
			"arp periodic_gc_runs":    0x82,
			"arp unresolved_discards": 0,
		}},
		{"stat/nf_conntrack", func(f *os.File) (Snapshot, error) { return ParseStat(f, "conntrack") }, 17, map[string]uint64{
			"conntrack drop":          0,
			"conntrack insert_failed": 0,
			"conntrack icmp_error":    0,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := tt.parse(open(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) < tt.min {
				t.Errorf("got %d counters, want at least %d", len(got), tt.min)
			}
			for name, want := range tt.want {
				if v, ok := got[name]; !ok || v != want {
					t.Errorf("%q = %d (present %v), want %d", name, v, ok, want)
				}
			}
		})
	}
}

func TestParseSNMPInline(t *testing.T) {
	tests := []struct {
		name, in string
		want     Snapshot // nil: want an error
	}{
		{"empty", "", Snapshot{}},
		{"blank lines", "\nUdp: NoPorts\nUdp: 3\n\n", Snapshot{"Udp NoPorts": 3}},
		{"empty section", "IcmpMsg:\nIcmpMsg:\n", Snapshot{}},
		{"negative", "Tcp: MaxConn\nTcp: -2\n", Snapshot{"Tcp MaxConn": math.MaxUint64 - 1}},
		{"max", "X: A\nX: 18446744073709551615\n", Snapshot{"X A": math.MaxUint64}},
		{"no values line", "Udp: NoPorts\n", nil},
		{"other section's values", "Udp: NoPorts\nTcp: 3\n", nil},
		{"too few values", "Udp: NoPorts InErrors\nUdp: 3\n", nil},
		{"too many values", "Udp: NoPorts\nUdp: 3 4\n", nil},
		{"not a number", "Udp: NoPorts\nUdp: x\n", nil},
		{"overflow", "Udp: NoPorts\nUdp: 18446744073709551616\n", nil},
		{"no colon", "Udp NoPorts\nUdp 3\n", nil},
		{"space in section", "U dp: NoPorts\nU dp: 3\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSNMP(strings.NewReader(tt.in))
			check(t, got, err, tt.want)
		})
	}
}

func TestParseSNMP6Inline(t *testing.T) {
	tests := []struct {
		name, in string
		want     Snapshot
	}{
		{"normalized", "Ip6InNoRoutes \t 4\nIcmp6OutType1 2\nUdpLite6NoPorts 1\n",
			Snapshot{"Ip6 InNoRoutes": 4, "Icmp6 OutType1": 2, "UdpLite6 NoPorts": 1}},
		{"no 6 kept as is", "Weird 1\n6Lead 2\nTail6 3\n", Snapshot{"Weird": 1, "6Lead": 2, "Tail6": 3}},
		{"blank line", "\nIp6InReceives 1\n", Snapshot{"Ip6 InReceives": 1}},
		{"no value", "Ip6InReceives\n", nil},
		{"extra field", "Ip6InReceives 1 2\n", nil},
		{"not a number", "Ip6InReceives one\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSNMP6(strings.NewReader(tt.in))
			check(t, got, err, tt.want)
		})
	}
}

func TestParseDevInline(t *testing.T) {
	const header = "Inter-|   Receive |  Transmit\n face |bytes packets drop|bytes drop colls\n"
	tests := []struct {
		name, in string
		want     Snapshot
	}{
		{"long name, no space after colon", header + "veth0123456789a:1 2 3 4 5 6\n", Snapshot{
			"dev veth0123456789a rx_bytes": 1, "dev veth0123456789a rx_packets": 2, "dev veth0123456789a rx_dropped": 3,
			"dev veth0123456789a tx_bytes": 4, "dev veth0123456789a tx_dropped": 5, "dev veth0123456789a collisions": 6,
		}},
		{"unknown columns", "x\n face |bytes new|bytes new\n  a: 1 2 3 4\n", Snapshot{
			"dev a rx_bytes": 1, "dev a rx_new": 2, "dev a tx_bytes": 3, "dev a tx_new": 4,
		}},
		{"no devices", header, Snapshot{}},
		{"no header", "", nil},
		{"one header line", "Inter-|   Receive |  Transmit\n", nil},
		{"header without bars", "x\nface bytes packets\n", nil},
		{"too few values", header + "lo: 1 2 3 4 5\n", nil},
		{"no colon", header + "lo 1 2 3 4 5 6\n", nil},
		{"no name", header + " : 1 2 3 4 5 6\n", nil},
		{"negative", header + "lo: 1 2 3 4 5 -6\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDev(strings.NewReader(tt.in))
			check(t, got, err, tt.want)
		})
	}
}

func TestParseSoftnetInline(t *testing.T) {
	tests := []struct {
		name, in string
		want     Snapshot
	}{
		{"old kernel, 11 columns", "0000000a 00000001 00000002 0 0 0 0 0 0 00000003 00000004\n0000000a 00000001 00000002 0 0 0 0 0 0 00000003 00000004\n",
			Snapshot{"softnet processed": 20, "softnet dropped": 2, "softnet time_squeeze": 4, "softnet received_rps": 6, "softnet flow_limit_count": 8}},
		{"very old kernel, 3 columns", "ffffffff 0 1\nffffffff 0 1\n",
			Snapshot{"softnet processed": 2 * 0xffffffff, "softnet dropped": 0, "softnet time_squeeze": 2}},
		{"other columns ignored", "1 2 3 zz zz zz zz zz zz 4 5 zz zz\n",
			Snapshot{"softnet processed": 1, "softnet dropped": 2, "softnet time_squeeze": 3, "softnet received_rps": 4, "softnet flow_limit_count": 5}},
		{"empty", "", Snapshot{}},
		{"not hex", "0000000g\n", nil},
		{"wider than 32 bits", "100000000\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSoftnet(strings.NewReader(tt.in))
			check(t, got, err, tt.want)
		})
	}
}

func TestParseStatInline(t *testing.T) {
	tests := []struct {
		name, in string
		want     Snapshot
	}{
		{"entries not summed", "entries drop\n00000005 00000001\n00000005 00000002\n", Snapshot{"ct entries": 5, "ct drop": 3}},
		{"header only", "entries drop\n", Snapshot{}},
		{"blank line", "drop\n\n1\n", Snapshot{"ct drop": 1}},
		{"empty", "", nil},
		{"too few values", "entries drop\n1\n", nil},
		{"not hex", "drop\nxyz\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(strings.NewReader(tt.in), "ct")
			check(t, got, err, tt.want)
		})
	}
}

// check compares a parser's result with want; a nil want means an error is
// expected.
func check(t *testing.T, got Snapshot, err error, want Snapshot) {
	t.Helper()
	if want == nil {
		if err == nil {
			t.Fatalf("got %v, want an error", got)
		}
		if got != nil {
			t.Errorf("got counters %v together with error %v", got, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("got %d counters %v, want %d %v", len(got), got, len(want), want)
	}
	for name, w := range want {
		if v, ok := got[name]; !ok || v != w {
			t.Errorf("%q = %d (present %v), want %d", name, v, ok, w)
		}
	}
}
