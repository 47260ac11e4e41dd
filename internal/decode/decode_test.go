package decode

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/kernel"
)

func encode(t testing.TB, r *event.Record) []byte {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func record(id string) *event.Record {
	var r event.Record
	if p, ok := event.ProbeNamed(id); ok {
		r.Probe = uint32(p)
	}
	r.Ts = 1_000_000
	r.Skb = 0xffff888100aa0000
	r.Netns = 4026532281
	copy8(r.Ifname[:], "veth-a")
	copy8(r.Comm[:], "ping")
	r.Flags = event.FlagParsed
	r.Pkt.Family = 4
	copy(r.Pkt.Saddr[:], []byte{198, 18, 3, 1})
	copy(r.Pkt.Daddr[:], []byte{198, 18, 3, 2})
	return &r
}

func copy8(dst []int8, s string) {
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

func TestDecode(t *testing.T) {
	syms, err := kernel.ParseSymbols(strings.NewReader("ffffffff81000000 T tcp_v4_rcv\nffffffff81001000 T other\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rec  func() *event.Record
		text string // Packet.String()
		chk  func(t *testing.T, e event.Event)
	}{
		{
			name: "icmp echo",
			rec: func() *event.Record {
				r := record("netif_receive_skb")
				r.Pkt.L4, r.Pkt.IcmpType, r.Pkt.IcmpId, r.Pkt.IcmpSeq = 1, 8, 7, 1
				return r
			},
			text: "icmp 198.18.3.1 > 198.18.3.2 echo request id 7 seq 1",
			chk: func(t *testing.T, e event.Event) {
				if e.Probe != event.NetifReceiveSkb || e.Name != "netif_receive_skb" || e.Group != "link" || e.Ifname != "veth-a" || e.Comm != "ping" {
					t.Errorf("names: %+v", e)
				}
			},
		},
		{
			name: "tcp drop",
			rec: func() *event.Record {
				r := record("kfree_skb")
				r.Pkt.L4, r.Pkt.Sport, r.Pkt.Dport, r.Pkt.TcpFlags, r.Pkt.TcpSeq = 6, 40000, 81, 0x02, 99
				r.Reason, r.Location = 2, 0xffffffff81000091
				return r
			},
			text: "tcp 198.18.3.1:40000 > 198.18.3.2:81 S seq 99",
			chk: func(t *testing.T, e event.Event) {
				if e.Location != "tcp_v4_rcv+0x91" || e.ReasonCode != 2 || e.Reason == "" {
					t.Errorf("drop facts: reason %q (%d) location %q", e.Reason, e.ReasonCode, e.Location)
				}
			},
		},
		{
			name: "ipv6 udp",
			rec: func() *event.Record {
				r := record("net_dev_queue")
				r.Pkt.Family, r.Pkt.L4, r.Pkt.Sport, r.Pkt.Dport = 6, 17, 5353, 53
				a := netip.MustParseAddr("fd00:3::1").As16()
				b := netip.MustParseAddr("fd00:3::2").As16()
				r.Pkt.Saddr, r.Pkt.Daddr = a, b
				return r
			},
			text: "udp [fd00:3::1]:5353 > [fd00:3::2]:53",
		},
		{
			name: "route lookup flow",
			rec: func() *event.Record {
				r := record("fib_table_lookup")
				r.Skb, r.Flags, r.Aux, r.Ret = 0, event.FlagFlow, 254, -101
				r.Pkt.L4 = 1
				r.Pkt.Saddr = [16]byte{}
				return r
			},
			text: "flow icmp 0.0.0.0 > 198.18.3.2",
			chk: func(t *testing.T, e event.Event) {
				f := e.Fields()
				if len(f) != 2 || f[0] != (event.Field{Key: "table", Value: uint32(254)}) || f[1] != (event.Field{Key: "err", Value: int32(-101)}) {
					t.Errorf("fields = %v", f)
				}
				if e.Facts.Route != (event.Route{Table: 254, Err: -101}) {
					t.Errorf("route = %+v", e.Facts.Route)
				}
			},
		},
		{
			name: "icmp error sent",
			rec: func() *event.Record {
				r := record("icmp_send")
				r.Pkt.L4, r.Pkt.Sport, r.Pkt.Dport = 17, 1000, 9
				r.Aux, r.Aux2 = 3, 3
				return r
			},
			text: "udp 198.18.3.1:1000 > 198.18.3.2:9",
			chk: func(t *testing.T, e event.Event) {
				if f := e.Fields(); f[0].Value != "port unreachable" || e.Facts.ICMP != (event.ICMPError{Type: 3, Code: 3}) {
					t.Errorf("fields = %v, facts %+v", f, e.Facts)
				}
			},
		},
		{
			name: "no headers",
			rec: func() *event.Record {
				r := record("net_dev_xmit")
				r.Flags, r.Pkt = 0, event.Record{}.Pkt
				return r
			},
			text: "",
		},
	}
	d := New(nil, syms)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := d.Decode(encode(t, tc.rec()))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Packet.String(); got != tc.text {
				t.Errorf("Packet.String() = %q, want %q", got, tc.text)
			}
			if tc.chk != nil {
				tc.chk(t, e)
			}
		})
	}
}

func TestDecodeShort(t *testing.T) {
	var d Decoder
	if _, err := d.Decode(make([]byte, event.RecordSize-1)); err != ErrShort {
		t.Fatalf("err = %v, want ErrShort", err)
	}
}

func TestFlags(t *testing.T) {
	for f, want := range map[uint8]string{0x02: "S", 0x12: "SA", 0x14: "RA", 0x11: "FA", 0x18: "PA", 0: ""} {
		if got := event.Flags(f); got != want {
			t.Errorf("Flags(%#x) = %q, want %q", f, got, want)
		}
	}
}

// FuzzDecode: whatever the ring buffer hands over, decoding never panics.
func FuzzDecode(f *testing.F) {
	f.Add(encode(f, record("kfree_skb")))
	f.Add(encode(f, record("fib_table_lookup")))
	f.Add([]byte{1, 2, 3})
	d := New(nil, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := d.Decode(b)
		if err != nil {
			return
		}
		_ = e.Packet.String()
	})
}
