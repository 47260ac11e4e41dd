package nftrace

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// The testdata files are NFT_MSG_TRACE payloads captured by the host tests
// (go test -update) on Linux 6.18.
func TestDecodeCaptured(t *testing.T) {
	a4, b4 := netip.MustParseAddr("198.18.194.1"), netip.MustParseAddr("198.18.194.2")
	echo := Packet{Src: a4, Dst: b4, Proto: 1, ICMPType: 8, ICMPID: 19265, ICMPSeq: 1}
	for _, tt := range []struct {
		file string
		want Event
	}{
		{"mark-rule.bin", Event{ID: 1974287046, Family: "inet", Table: "skbtrail_19244", Chain: "prerouting", Handle: 2,
			Type: "rule", Verdict: "continue", NFProto: "ip", Iif: 2, Packet: echo}},
		{"mark-end.bin", Event{ID: 1201899537, Family: "inet", Table: "skbtrail_19244_3", Chain: "prerouting",
			Type: "rule", Verdict: "continue", NFProto: "ip6"}},
		{"mark-policy.bin", Event{ID: 1974287046, Family: "inet", Table: "skbtrail_19244", Chain: "prerouting",
			Type: "policy", Verdict: "accept", NFProto: "ip"}},
		{"inet-drop.bin", Event{ID: 1974287046, Family: "inet", Table: "usr", Chain: "input", Handle: 2,
			Type: "rule", Verdict: "drop", NFProto: "ip", Iif: 2, Packet: echo}},
		{"iptables-drop.bin", Event{ID: 1798576351, Family: "ip", Table: "filter", Chain: "INPUT", Handle: 2,
			Type: "rule", Verdict: "drop", NFProto: "ip", Iif: 2,
			Packet: Packet{Src: netip.MustParseAddr("198.18.48.1"), Dst: netip.MustParseAddr("198.18.48.2"), Proto: 1, ICMPType: 8, ICMPID: 19351, ICMPSeq: 1}}},
		{"tcp6-reject.bin", Event{ID: 1201899537, Family: "inet", Table: "usr", Chain: "input", Handle: 2,
			Type: "rule", Verdict: "drop", NFProto: "ip6", Iif: 2,
			Packet: Packet{Src: netip.MustParseAddr("fd00:5b7:5a4d::1"), Dst: netip.MustParseAddr("fd00:5b7:5a4d::2"), Proto: 6, Sport: 38174, Dport: 7}}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("decode\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestVerdictName(t *testing.T) {
	for _, tt := range []struct {
		code  int32
		chain string
		want  string
	}{
		{0, "", "drop"},
		{1, "", "accept"},
		{2, "", "stolen"},
		{3 | 5<<16, "", "queue"}, // queue number 5
		{13 << 16, "", "drop"},   // NF_DROP_ERR(-EACCES)
		{-1, "", "continue"},
		{-2, "", "break"},
		{-3, "c1", "jump c1"},
		{-4, "c2", "goto c2"},
		{-5, "", "return"},
		{-9, "", "verdict -9"},
		{6, "", "verdict 6"},
	} {
		if got := verdictName(tt.code, tt.chain); got != tt.want {
			t.Errorf("verdictName(%d, %q) = %q, want %q", tt.code, tt.chain, got, tt.want)
		}
	}
}

func TestParsePacket(t *testing.T) {
	v4 := func(proto byte, frag uint16) []byte {
		h := []byte{0x45, 0, 0, 40, 0, 0, byte(frag >> 8), byte(frag), 64, proto, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2}
		return h
	}
	ports := []byte{0x30, 0x39, 0, 80, 0, 0, 0, 0}
	for _, tt := range []struct {
		name   string
		nh, th []byte
		want   Packet
	}{
		{"udp", v4(17, 0), ports, Packet{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: 17, Sport: 12345, Dport: 80}},
		{"later fragment", v4(17, 100), ports, Packet{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: 17}},
		{"icmp unreachable", v4(1, 0), []byte{3, 3}, Packet{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: 1, ICMPType: 3, ICMPCode: 3}},
		{"short transport", v4(6, 0), []byte{1}, Packet{Src: netip.MustParseAddr("198.18.0.1"), Dst: netip.MustParseAddr("198.18.0.2"), Proto: 6}},
		{"short ipv4", v4(6, 0)[:19], ports, Packet{}},
		{"arp", []byte{0, 1, 8, 0, 6, 4, 0, 1}, nil, Packet{}},
		{"none", nil, nil, Packet{}},
	} {
		if got := parsePacket(tt.nh, tt.th); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestParseListing(t *testing.T) {
	out := `# Warning: table ip filter is managed by iptables-nft, do not touch!
table ip filter { # handle 3
	chain INPUT { # handle 1
		type filter hook input priority filter; policy accept;
		meta l4proto icmp counter packets 3 bytes 252 drop # handle 2
		ip saddr 198.18.0.1 xt match "conntrack" counter packets 0 bytes 0 accept # handle 4
		tcp dport 22 # handle x
	}
}
`
	got := parseListing([]byte(out))
	want := map[uint64]string{
		2: "meta l4proto icmp counter drop",
		4: `ip saddr 198.18.0.1 xt match "conntrack" counter accept`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for h, s := range want {
		if got[h] != s {
			t.Errorf("handle %d: got %q, want %q", h, got[h], s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 4, 0, 5, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decode(b)
		if err == nil && e.Packet.Src.IsValid() != e.Packet.Dst.IsValid() {
			t.Errorf("half a packet: %+v", e.Packet)
		}
	})
}
