package pcapfilter

import (
	"encoding/binary"
	"net/netip"
)

// The differential corpus: raw IP packets built byte by byte (checksums do
// not matter to filters), so that IP options, IPv6 extension headers and
// fragments are exactly as wanted.

func a4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func a6(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }

// v4 is an IPv4 packet; opts is padded to a multiple of 4 bytes; frag is
// the flags and fragment offset field.
func v4(proto byte, src, dst string, ttl byte, frag uint16, opts []byte, payload []byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	h := make([]byte, 20, 20+len(opts)+len(payload))
	h[0] = 0x40 | byte((20+len(opts))/4)
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(opts)+len(payload)))
	binary.BigEndian.PutUint16(h[4:], 7)
	binary.BigEndian.PutUint16(h[6:], frag)
	h[8], h[9] = ttl, proto
	copy(h[12:], a4(src))
	copy(h[16:], a4(dst))
	return append(append(h, opts...), payload...)
}

func v6(next byte, src, dst string, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	copy(h[8:], a6(src))
	copy(h[24:], a6(dst))
	return append(h, payload...)
}

// ext is an IPv6 extension header (hop-by-hop, destination options,
// routing) of 8*(units+1) bytes.
func ext(next byte, units byte, rest []byte) []byte {
	h := make([]byte, 8*(int(units)+1))
	h[0], h[1] = next, units
	h[2] = 4 // routing: segments left / options: a PadN
	return append(h, rest...)
}

func frag6(next byte, off uint16, more bool, rest []byte) []byte {
	h := make([]byte, 8)
	h[0] = next
	f := off << 3
	if more {
		f |= 1
	}
	binary.BigEndian.PutUint16(h[2:], f)
	return append(h, rest...)
}

// ah is an authentication header with 12 bytes of ICV: length field 4.
func ah(next byte, rest []byte) []byte {
	h := make([]byte, 24)
	h[0], h[1] = next, 4
	return append(h, rest...)
}

func tcpH(sport, dport uint16, flags byte, opts int, payload string) []byte {
	h := make([]byte, 20+opts)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], 1000)
	h[12] = byte((20+opts)/4) << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 512)
	for i := 20; i < 20+opts; i++ {
		h[i] = 1 // NOP
	}
	return append(h, payload...)
}

func udpH(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func icmpH(typ, code byte, rest ...byte) []byte {
	return append([]byte{typ, code, 0, 0, 0, 7, 0, 1}, rest...)
}

func sctpH(sport, dport uint16) []byte {
	h := make([]byte, 12)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	return append(h, 1, 0, 0, 20) // an INIT chunk header
}

const (
	tF, tS, tR, tP, tA, tU, tE, tC = 1, 2, 4, 8, 16, 32, 64, 128
)

type namedPacket struct {
	name string
	data []byte
}

func corpus() []namedPacket {
	big := make([]byte, 600)
	for i := range big {
		big[i] = byte(i)
	}
	opts3 := []byte{1, 1, 1, 0}                     // NOP NOP NOP EOL
	opts8 := []byte{0x83, 7, 4, 198, 18, 0, 1, 0}   // loose source route
	ra := []byte{0x94, 4, 0, 0}                     // router alert
	hbhMLD := ext(58, 0, icmpH(143, 0, 0, 0, 0, 1)) // hop-by-hop then MLDv2 report
	out := []namedPacket{
		{"tcp4 syn :80", v4(6, "198.18.0.1", "198.18.0.2", 64, 0x4000, nil, tcpH(40000, 80, tS, 0, ""))},
		{"tcp4 ack get", v4(6, "198.18.0.1", "198.18.0.2", 64, 0x4000, nil, tcpH(40000, 80, tA|tP, 0, "GET / HTTP/1.1\r\n\r\n"))},
		{"tcp4 synack", v4(6, "198.18.0.2", "198.18.0.1", 63, 0, nil, tcpH(80, 40000, tS|tA, 0, ""))},
		{"tcp4 rst ack other net", v4(6, "10.0.0.1", "198.18.0.1", 30, 0, nil, tcpH(443, 1500, tR|tA, 0, string(big[:100])))},
		{"tcp4 fin :22", v4(6, "198.19.255.255", "198.18.0.1", 128, 0, nil, tcpH(22, 50000, tF|tA, 0, ""))},
		{"tcp4 ece cwr opts :443", v4(6, "198.18.0.1", "198.18.0.2", 64, 0, nil, tcpH(50001, 443, tS|tE|tC, 12, ""))},
		{"tcp4 urg push :21", v4(6, "198.18.0.3", "10.1.2.3", 64, 0, nil, tcpH(21, 20, tU|tP|tA, 0, "data"))},
		{"udp4 :53", v4(17, "198.18.0.1", "198.18.0.2", 64, 0, nil, udpH(5353, 53, []byte{0x12, 0x34, 0, 0}))},
		{"udp4 ttl1 :1999", v4(17, "198.18.0.1", "10.0.0.1", 1, 0, nil, udpH(1234, 1999, []byte{0x12, 0x34}))},
		{"udp4 7000-7009", v4(17, "198.18.0.5", "198.18.0.6", 64, 0, nil, udpH(7005, 7010, nil))},
		{"udp4 :5000", v4(17, "198.18.0.1", "198.18.0.2", 64, 0, nil, udpH(5003, 5000, nil))},
		{"udp4 big", v4(17, "198.18.0.1", "198.18.0.2", 64, 0, nil, udpH(1000, 2000, big))},
		{"udp4 dhcp broadcast", v4(17, "0.0.0.0", "255.255.255.255", 64, 0, nil, udpH(68, 67, make([]byte, 20)))},
		{"udp4 zero dst", v4(17, "198.18.0.1", "0.0.0.0", 64, 0, nil, udpH(68, 67, nil))},
		{"udp4 multicast", v4(17, "198.18.0.1", "239.1.2.3", 1, 0, nil, udpH(5000, 5000, []byte{1}))},
		{"icmp4 echo", v4(1, "198.18.0.1", "198.18.0.2", 64, 0, nil, icmpH(8, 0, big[:56]...))},
		{"icmp4 reply", v4(1, "198.18.0.2", "198.18.0.1", 64, 0, nil, icmpH(0, 0))},
		{"icmp4 unreach port", v4(1, "198.18.0.2", "198.18.0.1", 64, 0, nil, icmpH(3, 3, v4(17, "198.18.0.1", "198.18.0.2", 64, 0, nil, udpH(1, 2, nil))...))},
		{"icmp4 timxceed", v4(1, "10.0.0.1", "198.18.0.1", 250, 0, nil, icmpH(11, 0))},
		{"igmp4 query", v4(2, "198.18.0.1", "224.0.0.1", 1, 0, ra, []byte{0x11, 100, 0, 0, 0, 0, 0, 0})},
		{"sctp4 :3868", v4(132, "198.18.0.1", "198.18.0.2", 64, 0, nil, sctpH(3868, 3868))},
		{"ip4 options tcp :80", v4(6, "198.18.0.1", "198.18.0.2", 64, 0, opts3, tcpH(1, 80, tS, 0, ""))},
		{"ip4 lsrr udp :53", v4(17, "198.18.0.1", "198.18.0.2", 64, 0, opts8, udpH(53, 53, nil))},
		{"ip4 first fragment udp :53", v4(17, "198.18.0.1", "198.18.0.2", 64, 0x2000, nil, udpH(5353, 53, big[:40]))},
		{"ip4 later fragment udp", v4(17, "198.18.0.1", "198.18.0.2", 64, 185, nil, []byte{0x14, 0xe9, 0, 53, 0, 8, 0, 0})},
		{"ip4 later fragment tcp", v4(6, "198.18.0.1", "198.18.0.2", 64, 0x2001, nil, tcpH(80, 80, tS, 0, ""))},
		{"ip4 ah tcp :80", v4(51, "198.18.0.1", "198.18.0.2", 64, 0, nil, ah(6, tcpH(1234, 80, tS, 0, "")))},
		{"ip4 ah ah udp", v4(51, "198.18.0.1", "198.18.0.2", 64, 0, nil, ah(51, ah(17, udpH(1, 53, nil))))},
		{"ip4 gre", v4(47, "198.18.0.1", "198.18.0.2", 64, 0, nil, []byte{0, 0, 8, 0})},
		{"ip4 esp", v4(50, "198.18.0.1", "198.18.0.2", 64, 0, nil, big[:16])},
		{"ip4 pim", v4(103, "198.18.0.1", "224.0.0.13", 1, 0, nil, []byte{0x20, 0, 0, 0})},
		{"ip4 vrrp", v4(112, "198.18.0.1", "224.0.0.18", 255, 0, nil, []byte{0x21, 1, 100, 1})},
		{"ip4 igrp", v4(9, "198.18.0.1", "255.255.255.255", 1, 0, nil, []byte{0x11, 0, 0, 1})},
		{"ip4 ihl 3", func() []byte {
			p := v4(6, "198.18.0.1", "198.18.0.2", 64, 0, nil, tcpH(1, 80, tS, 0, ""))
			p[0] = 0x43
			return p
		}()},
		{"ip4 tos ttl0", func() []byte {
			p := v4(17, "198.18.0.1", "198.18.0.2", 0, 0, nil, udpH(9, 9, nil))
			p[1] = 0xb8
			return p
		}()},
		{"tcp6 syn :22", v6(6, "fd00:1::1", "fd00:1::2", tcpH(40000, 22, tS, 0, ""))},
		{"tcp6 ack :80", v6(6, "fd00:1::2", "2001:db8::80", tcpH(80, 33000, tA|tP, 0, "GET "))},
		{"udp6 :53", v6(17, "fd00:1::2", "fd00:1::1", udpH(53, 5353, []byte{1, 2, 3}))},
		{"udp6 v4-mapped", v6(17, "::ffff:198.18.0.1", "::ffff:198.18.0.2", udpH(7001, 5004, nil))},
		{"udp6 loopback", v6(17, "::1", "::1", udpH(123, 123, nil))},
		{"icmp6 echo", v6(58, "fd00:1::1", "fd00:1::2", icmpH(128, 0, 1, 2, 3, 4))},
		{"icmp6 reply", v6(58, "fd00:1::2", "fd00:1::1", icmpH(129, 0))},
		{"icmp6 ns multicast", v6(58, "fe80::1", "ff02::1:ff00:2", icmpH(135, 0, a6("fd00:1::2")...))},
		{"icmp6 unreach", v6(58, "fd00:2::1", "fd00:1::1", icmpH(1, 4))},
		{"ip6 hbh mld", v6(0, "fe80::1", "ff02::16", hbhMLD)},
		{"ip6 hbh udp", v6(0, "fd00:1::1", "fd00:1::2", ext(17, 0, udpH(1000, 53, nil)))},
		{"ip6 routing tcp", v6(43, "fd00:1::1", "fd00:1::2", ext(6, 2, tcpH(1000, 80, tS, 0, "")))},
		{"ip6 dstopts tcp", v6(60, "fd00:1::1", "fd00:1::2", ext(6, 0, tcpH(1000, 443, tS, 0, "")))},
		{"ip6 first fragment udp", v6(44, "fd00:1::1", "fd00:1::2", frag6(17, 0, true, udpH(5353, 53, big[:24])))},
		{"ip6 later fragment tcp", v6(44, "fd00:1::1", "fd00:1::2", frag6(6, 100, false, big[:24]))},
		{"ip6 fragment icmp6", v6(44, "fd00:1::1", "fd00:1::2", frag6(58, 0, true, icmpH(128, 0)))},
		{"ip6 chain hbh dst rt frag tcp", v6(0, "fd00:1::1", "fd00:1::2", ext(60, 0, ext(43, 1, frag6(6, 0, false, tcpH(1, 80, tS, 0, "")))))},
		{"ip6 ah tcp", v6(51, "fd00:1::1", "fd00:1::2", ah(6, tcpH(1, 80, tS, 0, "")))},
		{"ip6 hbh ah udp", v6(0, "fd00:1::1", "fd00:1::2", ext(51, 0, ah(17, udpH(1, 53, nil))))},
		{"ip6 no next header", v6(59, "fd00:1::1", "fd00:1::2", nil)},
		{"ip6 esp", v6(50, "fd00:1::1", "fd00:1::2", big[:16])},
		{"sctp6", v6(132, "fd00:1::1", "fd00:1::2", sctpH(5000, 3868))},
		{"ip6 in ip4", v4(41, "198.18.0.1", "198.18.0.2", 64, 0, nil, v6(17, "fd00:1::1", "fd00:1::2", udpH(1, 2, nil)))},
		{"ip4 in ip6", v6(4, "fd00:1::1", "fd00:1::2", v4(6, "198.18.0.1", "198.18.0.2", 64, 0, nil, tcpH(1, 2, 0, 0, "")))},
		{"not ip", []byte{0x00, 1, 2, 3, 4, 5, 6, 7}},
		{"version 5", append([]byte{0x55}, big[:60]...)},
		{"noise", append([]byte{0x4f}, big[100:200]...)},
		{"empty", nil},
		{"ip4 len60 tos1 ttl121", func() []byte {
			p := v4(6, "198.18.0.1", "198.18.0.2", 121, 0, nil, tcpH(1, 2, tA, 0, string(big[:20])))
			p[1] = 1
			return p
		}()},
		{"udp4 ttl17 sport17", v4(17, "198.18.0.1", "198.18.0.2", 17, 0, nil, udpH(17, 9, nil))},
		{"ip6 traffic class", func() []byte {
			p := v6(17, "fd00:1::1", "fd00:1::2", udpH(1, 2, nil))
			p[0], p[1] = 0x62, 0x10
			return p
		}()},
		{"tcp4 self :513", v4(6, "198.18.0.1", "198.18.0.1", 64, 0, nil, tcpH(1023, 513, tS, 0, ""))},
		{"ipip", v4(4, "198.18.0.1", "198.18.0.2", 64, 0, nil, v4(17, "10.0.0.1", "10.0.0.2", 64, 0, nil, udpH(1, 2, nil)))},
		{"tcp4 helios ace", v4(6, "198.18.0.2", "198.18.0.3", 64, 0, nil, tcpH(1, 2, tA, 0, ""))},
		{"tcp4 syn from outside", v4(6, "10.0.0.1", "198.18.0.1", 64, 0, nil, tcpH(1234, 80, tS, 0, ""))},
	}
	for _, typ := range []byte{4, 5, 9, 10, 12, 13, 14, 15, 16, 17, 18} {
		out = append(out, namedPacket{"icmp4 type " + string(rune('a'+typ)), v4(1, "198.18.0.2", "198.18.0.1", 5, 0, nil, icmpH(typ, 0))})
	}
	for _, typ := range []byte{2, 3, 4, 130, 132, 133, 134, 136, 137, 143} {
		out = append(out, namedPacket{"icmp6 type " + string(rune('a'+typ%26)), v6(58, "fe80::1", "ff02::1", icmpH(typ, 0))})
	}
	return out
}

// exprs is the differential list: every example of pcap-filter(7) that
// applies to IP (host names replaced with addresses: sundown 198.18.0.1,
// helios 198.18.0.2, hot 10.0.0.1, ace 198.18.0.3, localnet and
// ucb-ether 198.18.0.0/15), every primitive and named constant, the
// written forms of addresses, and arithmetic.
var exprs = []string{
	// pcap-filter(7) EXAMPLES
	"host 198.18.0.1",
	"host 198.18.0.2 and (10.0.0.1 or 198.18.0.3)",
	"ip host 198.18.0.3 and not 198.18.0.2",
	"net 198.18",
	"ip and not net 198.18.0.0/15",
	"tcp[tcpflags] & (tcp-syn|tcp-fin) != 0 and not src and dst net 198.18.0.0/15",
	"tcp[tcpflags] & (tcp-rst|tcp-ack) == (tcp-rst|tcp-ack)",
	"tcp port 80 and (((ip[2:2] - ((ip[0]&0xf)<<2)) - ((tcp[12]&0xf0)>>2)) != 0)",
	"ip[2:2] > 576",
	"ip[16] >= 224",
	"icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply",
	"icmp6[icmp6type] != icmp6-echo and icmp6[icmp6type] != icmp6-echoreply",
	// pcap-filter(7) text
	"net 128.3", "tcp port 21", "udp portrange 7000-7009", "port 53", "dst port 513",
	"port domain", "tcp dst port ftp or tcp dst port ftp-data or tcp dst port domain",
	"tcp dst port ftp or ftp-data or domain", "tcp src port 22", "ip proto 1", "ip6 proto 58",
	"ip proto \\tcp", "ip6 protochain 6", "ip protochain 6", "ip multicast", "ip6 multicast",
	"ip broadcast", "len <= 100", "len >= 100", "less 100", "greater 100",
	"tcp[13] & 3 != 0", "ip[0] & 0xf != 5", "ip[6:2] & 0x1fff = 0", "icmp[0] = 8",
	"tcp[tcpflags] & tcp-syn != 0", "icmp[icmptype] = icmp-unreach",
	// protocols
	"", "ip", "ip6", "tcp", "udp", "icmp", "icmp6", "sctp", "igmp", "igrp", "pim", "vrrp", "carp", "ah", "esp",
	"not tcp", "! udp", "tcp or udp", "tcp || icmp6", "ip && tcp", "ip6 and udp", "not ip6",
	"proto 6", "proto 17", "proto 47", "proto 300", "proto \\tcp", "proto \\udp", "ip proto 50", "ip6 proto 44",
	"ip6 proto 17", "ip proto 2", "ip6 proto \\udp", "proto gre", "ip proto \\esp", "ip6 proto ipv6-icmp",
	"proto 41", "ip proto 4", "ip6 proto 0", "ip6 proto 59",
	"protochain 6", "protochain 17", "protochain 58", "protochain 51", "protochain 44", "protochain 59",
	"protochain 0", "ip6 protochain 17", "ip protochain 17", "protochain \\tcp", "protochain \\udp",
	"ip protochain 51", "ip6 protochain 60",
	// hosts and nets
	"host 198.18.0.2", "src host 198.18.0.1", "dst host 198.18.0.2", "ip host 10.0.0.1",
	"src or dst host 198.18.0.1", "src and dst host 198.18.0.1", "dst or src host 198.18.0.2",
	"dst and src net 198.18.0.0/15", "src 198.18.0.1", "dst 198.18.0.2", "src 10.0.0.1 or dst 10.0.0.1",
	"host 198.18.0.1 or 198.18.0.2", "host 198.18.0.1 and not 198.18.0.2", "host 198.18.0.1 or (198.18.0.2 and 10.0.0.1)",
	"host 198.18.0.1 or not 198.18.0.2", "net 198.18.0.0/15", "net 198.18.0.0/16", "net 198.19.0.0/16",
	"net 10.0.0.0/8", "net 10", "net 198.18.0", "net 198.18.0.0 mask 255.254.0.0", "net 10.0.0.0 mask 255.0.0.0",
	"dst net 198.18.0.0/15", "src net 10.0.0.0/8", "net 0.0.0.0/0", "net 224.0.0.0/4", "host 255.255.255.255",
	"host 0.0.0.0", "net 198.18.0.0/15 or 10.0.0.0/8", "net 10 or 11", "host 198.18", "net 198.19.255.255/32",
	"src 198.18.0.1 and dst 198.18.0.2", "host 239.1.2.3", "ip src 198.18.0.1",
	"host fd00:1::1", "host fd00:1::2", "src host fd00:1::1", "dst host fd00:1::2", "ip6 host fd00:1::1",
	"host fd00:1:0:0:0:0:0:1", "host FD00:1::1", "host fd00:0001::0001", "host ::1", "host ::",
	"host ::ffff:198.18.0.1", "host ::ffff:c612:1", "host 2001:db8::80", "net fd00::/8", "net fd00:1::/32",
	"src net fd00::/8", "dst net ff00::/8", "net ::/0", "net fe80::/10", "net ::ffff:0:0/96",
	"net 2001:db8::/32 or fd00:1::/64", "host fe80::1 or ff02::16", "net fd00:1::/127", "net fd00:1::/128",
	"src or dst net fd00::/8", "src and dst net fd00:1::/64", "host fd00:1::1 and not fd00:1::2",
	"host ff02::1:ff00:2", "dst host ff02::16",
	// ports
	"port 80", "port 22", "tcp port 443", "udp port 53", "sctp port 3868", "src port 40000", "dst port 80",
	"tcp dst port 80", "udp src port 5353", "port 80 or 443", "port 80 or 22 or 53", "tcp port 80 or 443",
	"not port 22", "not port 80 or 22", "port 0x50", "port 0120", "src or dst port 53", "src and dst port 53",
	"dst and src port 3868", "tcp src or dst port 80", "port http", "port ftp-data", "tcp port ssh", "udp port ntp",
	"portrange 1000-2000", "portrange 20-30", "portrange 7000-7009", "udp portrange 5002-5004",
	"tcp portrange 0-1023", "src portrange 1-1023", "dst portrange 1024-65535", "portrange 30-20",
	"portrange 53", "portrange 20-ssh", "sctp portrange 3000-4000",
	"udp and dst portrange 5002-5004", "tcp dst portrange 22-80 or 443",
	// relations and arithmetic
	"tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] & tcp-push != 0", "tcp[tcpflags] & tcp-urg != 0",
	"tcp[tcpflags] & tcp-ece != 0", "tcp[tcpflags] & tcp-cwr != 0", "tcp[tcpflags] & tcp-rst != 0",
	"tcp[tcpflags] & tcp-fin != 0", "tcp[tcpflags] = tcp-ack|tcp-push", "tcp[tcpflags] & tcp-ack = 0",
	"icmp[icmptype] == icmp-echo", "icmp[icmptype] = icmp-echoreply", "icmp[icmptype] = icmp-timxceed",
	"icmp[icmpcode] = 3", "icmp[icmptype] = icmp-sourcequench or icmp[icmptype] = icmp-redirect",
	"icmp[icmptype] = icmp-routeradvert or icmp[icmptype] = icmp-routersolicit or icmp[icmptype] = icmp-paramprob",
	"icmp[icmptype] = icmp-tstamp or icmp[icmptype] = icmp-tstampreply or icmp[icmptype] = icmp-ireq",
	"icmp[icmptype] = icmp-ireqreply or icmp[icmptype] = icmp-maskreq or icmp[icmptype] = icmp-maskreply",
	"icmp6[icmp6type] = icmp6-echo", "icmp6[icmp6type] == icmp6-echoreply", "icmp6[icmp6type] = icmp6-neighborsolicit",
	"icmp6[icmp6type] = icmp6-destinationunreach and icmp6[icmp6code] = 4",
	"icmp6[icmp6type] = icmp6-neighboradvert or icmp6[icmp6type] = icmp6-routersolicit or icmp6[icmp6type] = icmp6-routeradvert",
	"icmp6[icmp6type] = icmp6-multicastlistenerreportv2 or icmp6[icmp6type] = icmp6-multicastlistenerquery",
	"icmp6[icmp6type] = icmp6-packettoobig or icmp6[icmp6type] = icmp6-timeexceeded or icmp6[icmp6type] = icmp6-parameterproblem",
	"icmp6[icmp6type] = icmp6-redirect or icmp6[icmp6type] = icmp6-multicastlistenerdone",
	"icmp6 and ip6[40] == 128", "ip[8] < 64", "ip[8] <= 1", "ip[8] > 100", "ip[8] >= 64", "ip[8] != 64",
	"ip[2:2] > 100", "ip[2:2] < 60", "ip[12:4] = 0xc6120001", "ip[16:4] & 0xfffe0000 = 0xc6120000",
	"ip6[6] = 58", "ip6[7] = 64", "ip6[0:4] & 0x0ff00000 != 0", "ip6[4:2] > 20", "ip6[40] = 128", "ip6[8:4] = 0xfd000001",
	"udp[8:2] = 0x1234", "udp[0:2] = 5353", "udp[2:2] = 53", "udp[4:2] > 8", "tcp[0:2] = 40000", "tcp[2:2] = 80",
	"tcp[20:4] = 0x47455420", "tcp[12] >> 4 > 5", "sctp[0:2] = 3868", "igmp[0] = 0x11", "icmp[8:4] != 0",
	"pim[0] = 0x20", "vrrp[1] = 1", "igrp[0] = 0x11",
	"ip[0] & 0xf > 5", "ip[2:2] / 4 == 15", "ip[2:2] % 7 == 3", "ip[1] * 3 - 1 == 2", "ip[12:4] ^ 0xc6120001 == 0",
	"ip[2:2] >> 2 == 15", "ip[3] << 9 == 0x7800", "ip[0] - 0x40 = 5", "ip[0] + ip[1] > 0x40", "ip[9] * ip[8] > 1000",
	"ip[9] | ip[8] = 0x7f", "ip[9] & ip[8] != 0", "ip[9] ^ ip[8] = 70", "ip[ip[0] & 0xf] = 0", "tcp[tcp[12] >> 4] != 0",
	"ip[2:2] - 20 = len - 20", "len = 40", "len > 60 and len < 600", "len - 20 > 100", "len >= 41 and len <= 60",
	"len & 3 = 0", "len / 2 > 30", "len % 2 = 1", "-ip[8] > 0xffffff00", "ip[8] = -(-64)", "ip[0] = 0x45",
	"ip[1:2] = 0", "ip[100] = 72", "ip[100] = 1 or tcp", "not ip[60] = 0", "ip6[100] = 0 or ip6",
	"tcp[100] = 0 or udp", "ip[2:4] = ip[2:4]", "ip[8] = ip[9]", "ip6[7] > ip6[6]", "udp[0:2] = ip[9]",
	"ip[2:2] - ((ip[0]&0xf)<<2) > 20", "((ip[0]&0xf)<<2) = 20", "(ip[8]) = 64", "(ip[8] = 64)", "((ip[8] = 64))",
	"ip[0] = 0x45 and (ip[8] = 64 or ip[8] = 1)", "1 = 1", "len = len", "ip[8] / ip[9] > 3", "ip[8] % ip[9] = 0",
	"ip[8] << ip[9] > 0", "ip[8] >> ip[9] = 0", "tcp[4:4] = 1000", "icmp6[4:2] = 7", "icmp6[icmp6code] = 0",
	"ip[0:1] = 0x45", "ip6[0:2] & 0xf000 = 0x6000", "ip[0] & 0x40 != 0", "ip[6] & 0x20 != 0", "ip[6] & 0x40 != 0",
	// combinations
	"tcp and dst port 80", "tcp and dst port 80 and net 198.18.0.0/15", "tcp port 443 or (udp and not port 53)",
	"ip and (tcp[13] = 2)", "ip6 and tcp and dst port 22", "host 198.18.0.1 and port 80", "not host 198.18.0.1 and port 53",
	"(tcp or udp) and host 198.18.0.2", "tcp and not (port 80 or port 22)", "udp or icmp and host 198.18.0.1",
	"icmp or icmp6", "ip and udp and port 53 or ip6 and udp and port 53", "not (ip or ip6)", "not not tcp",
	"! (tcp && port 80) || icmp", "host 198.18.0.1 and (port 80 or 22)", "port 80 and host 198.18.0.1 or 198.18.0.2",
	"tcp or udp and port 53", "ip6 and not icmp6", "udp and dst portrange 5002-5004", "icmp and ip[8] < 10",
	"ip multicast or ip6 multicast", "ip broadcast or ip multicast", "not ip multicast and udp",
	"greater 100 and udp", "less 60 and tcp", "ip and len > 40", "protochain 6 and not tcp", "tcp and not protochain 6",
	"ip6 protochain 17 or ip6 protochain 58", "host fd00:1::1 and port 22", "net fd00::/8 and tcp",
	"src net 198.18.0.0/15 and dst net 198.18.0.0/15", "dst port 53 and (udp or tcp)", "sctp or igmp or pim",
	"ah or esp", "ip proto 51 or ip6 proto 51", "port 80 or 443 and host 198.18.0.2",
	"host 198.18.0.1 and net 198.18 or port 22 and not tcp", "(host 198.18.0.1 or host fd00:1::1) and udp",
	// found by FuzzAgainstLibpcap
	"tcp and ip[9] = 17", "ip[9] = 17 and ip[9] = 17", "32 << ip[20] = 0 or ip", "-48 % 48 = 0", "-32 / len = 0",
	"0 << ip[0] = 0", "sctp or net ::/0", "len / -len ^ len >= len", "protochain 6 and ip and ip or ip",
	"not ip6 and ip6 protochain 6", "sctp and 32 = (-0)", "32 << -2 = 0", "ip[8] * 0 + ip[9] = 6",
}

// badExprs are expressions libpcap refuses too (on raw IP).
var badExprs = []string{
	"tcp and and port 80", "port 99999", "tcp host 1.2.3.4", "ip6 port 80", "ip proto tcp", "src proto 6",
	"tcp or 80", "host 198.18.0.0/15", "198.18.0.0/15", "1.2.3.4", "80", "net 198.18.0.1/15", "ip[0:3] = 1",
	"ip[1] / ip[0] = 1", "ip[0] << 32 = 0", "ip[0] / 0 = 1", "ip[0] % 0 = 1", "tcp proto 6", "icmp6 proto 5",
	"ip host ::1", "ip6 host 1.2.3.4", "arp", "ip and ip6", "tcp and udp", "udp[0] = ip6[0]", "port 80 or (tcp and 443)",
	"(", ")", "tcp[", "host", "port", "ip[0] =", "= 1", "host 1.2.3.4 or", "not", "net fd00::1/8",
	"host fd00::/64", "gateway 198.18.0.1", "ether host 1:2:3:4:5:6", "vlan", "mpls",
	"broadcast", "multicast", "tcp broadcast", "ip6 broadcast", "port foo", "proto foo", "host foo.example",
	"portrange 1-70000", "ip[0] / (1 - 1) = 0", "ip6 net 1.2.3.0/24", "udp port ssh-", "ether[0] = 1",
	"link[0] = 1", "ip[0] = 1 = 1", "less", "greater foo", "inbound", "ifindex 1", "net 10.0.0.0/33",
	"net fd00::/129", "1 = 2", "ip[8] = ip6[7]", "ip6[7] = tcp[13]", "udp[0] = ip6[40]",
	"ip proto esp", "protochain udp", "len < len and not len < len", "less 116 and not less 116",
	"ip or 198.18.0.1", "udp port ftp-data", "len << -2 = 0", "(((48 << 48))) = 0", "((-48 % 48)) = 16", "ip proto ah", "proto icmp", "portrange ftp-data-ssh",
}
