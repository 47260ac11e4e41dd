package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// checkErr checks the shape every error of the package must have.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not wrap ErrInvalid", err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Errorf("error %q is not one line", msg)
	}
	if !strings.HasPrefix(msg, "--") {
		t.Errorf("error %q does not start with a flag name", msg)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Filter
		str  string
	}{
		{"nothing", Options{}, Filter{}, "all packets"},
		{"ipv4 address", Options{Saddr: "198.18.0.1"}, Filter{Saddr: pfx("198.18.0.1/32")}, "saddr 198.18.0.1"},
		{"ipv4 prefix", Options{Daddr: "198.18.0.0/15"}, Filter{Daddr: pfx("198.18.0.0/15")}, "daddr 198.18.0.0/15"},
		{"ipv4 prefix masked", Options{Addr: "198.19.7.1/15"}, Filter{Addr: pfx("198.18.0.0/15")}, "addr 198.18.0.0/15"},
		{"ipv4 /32 is an address", Options{Saddr: "10.0.0.1/32"}, Filter{Saddr: pfx("10.0.0.1/32")}, "saddr 10.0.0.1"},
		{"ipv4 /0", Options{Saddr: "1.2.3.4/0"}, Filter{Saddr: pfx("0.0.0.0/0")}, "saddr 0.0.0.0/0"},
		{"ipv6 address", Options{Saddr: "fd00::1"}, Filter{Saddr: pfx("fd00::1/128")}, "saddr fd00::1"},
		{"ipv6 address not canonical", Options{Saddr: "FD00:0:0::01"}, Filter{Saddr: pfx("fd00::1/128")}, "saddr fd00::1"},
		{"ipv6 prefix", Options{Daddr: "fd00::/8"}, Filter{Daddr: pfx("fd00::/8")}, "daddr fd00::/8"},
		{"ipv6 prefix masked", Options{Daddr: "fd12:3456::1/16"}, Filter{Daddr: pfx("fd12::/16")}, "daddr fd12::/16"},
		{"ipv4-mapped address unmapped", Options{Saddr: "::ffff:198.18.0.1"}, Filter{Saddr: pfx("198.18.0.1/32")}, "saddr 198.18.0.1"},
		{"ipv4-mapped prefix unmapped", Options{Saddr: "::ffff:198.18.0.1/111"}, Filter{Saddr: pfx("198.18.0.0/15")}, "saddr 198.18.0.0/15"},
		{"ipv4-mapped /96 is all of ipv4", Options{Saddr: "::ffff:0.0.0.0/96"}, Filter{Saddr: pfx("0.0.0.0/0")}, "saddr 0.0.0.0/0"},
		{"wider than ipv4-mapped stays ipv6", Options{Saddr: "::ffff:1.2.3.4/95"}, Filter{Saddr: pfx("::fffe:0:0/95")}, "saddr ::fffe:0:0/95"},
		{"mapped and plain ipv4 mix", Options{Saddr: "::ffff:10.0.0.1", Daddr: "10.0.0.2"},
			Filter{Saddr: pfx("10.0.0.1/32"), Daddr: pfx("10.0.0.2/32")}, "saddr 10.0.0.1, daddr 10.0.0.2"},
		{"surrounding space", Options{Saddr: " 10.0.0.1 ", Dport: " 80"}, Filter{Saddr: pfx("10.0.0.1/32"), Dport: 80}, "saddr 10.0.0.1, dport 80"},
		{"ports", Options{Sport: "1", Dport: "65535", Port: "080"}, Filter{Sport: 1, Dport: 65535, Port: 80}, "sport 1, dport 65535, port 80"},
		{"tcp", Options{Proto: "tcp"}, Filter{Proto: 6}, "proto tcp"},
		{"TCP", Options{Proto: "TCP"}, Filter{Proto: 6}, "proto tcp"},
		{"udp", Options{Proto: "udp"}, Filter{Proto: 17}, "proto udp"},
		{"icmp", Options{Proto: "icmp"}, Filter{Proto: 1}, "proto icmp"},
		{"icmp6", Options{Proto: "icmp6"}, Filter{Proto: 58}, "proto icmp6"},
		{"icmpv6", Options{Proto: "icmpv6"}, Filter{Proto: 58}, "proto icmp6"},
		{"ipv6-icmp", Options{Proto: "ipv6-icmp"}, Filter{Proto: 58}, "proto icmp6"},
		{"proto number", Options{Proto: "47"}, Filter{Proto: 47}, "proto 47"},
		{"proto number 255", Options{Proto: "255"}, Filter{Proto: 255}, "proto 255"},
		{"proto number 6 is tcp", Options{Proto: "6", Dport: "80"}, Filter{Proto: 6, Dport: 80}, "proto tcp, dport 80"},
		{"icmp with ipv4", Options{Proto: "icmp", Saddr: "198.18.0.1"}, Filter{Proto: 1, Saddr: pfx("198.18.0.1/32")}, "proto icmp, saddr 198.18.0.1"},
		{"icmp6 with ipv6", Options{Proto: "icmp6", Daddr: "fd00::/8"}, Filter{Proto: 58, Daddr: pfx("fd00::/8")}, "proto icmp6, daddr fd00::/8"},
		{"icmp with mapped ipv4", Options{Proto: "icmp", Addr: "::ffff:1.2.3.4"}, Filter{Proto: 1, Addr: pfx("1.2.3.4/32")}, "proto icmp, addr 1.2.3.4"},
		{"udp with ports", Options{Proto: "udp", Sport: "53", Dport: "5353"}, Filter{Proto: 17, Sport: 53, Dport: 5353}, "proto udp, sport 53, dport 5353"},
		{"ports without proto", Options{Port: "443"}, Filter{Port: 443}, "port 443"},
		{"all address flags one family", Options{Saddr: "fd00::1", Daddr: "fd00::/8", Addr: "::1"},
			Filter{Saddr: pfx("fd00::1/128"), Daddr: pfx("fd00::/8"), Addr: pfx("::1/128")}, "saddr fd00::1, daddr fd00::/8, addr ::1"},
		{"everything", Options{Saddr: "10.1.0.0/16", Daddr: "10.2.3.4", Addr: "10.0.0.0/8", Sport: "1000", Dport: "80", Port: "8080", Proto: "tcp"},
			Filter{Saddr: pfx("10.1.0.0/16"), Daddr: pfx("10.2.3.4/32"), Addr: pfx("10.0.0.0/8"), Sport: 1000, Dport: 80, Port: 8080, Proto: 6},
			"proto tcp, saddr 10.1.0.0/16, daddr 10.2.3.4, addr 10.0.0.0/8, sport 1000, dport 80, port 8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%+v): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.str {
				t.Errorf("String() = %q, want %q", s, tt.str)
			}
			if got.Empty() != (tt.str == "all packets") {
				t.Errorf("Empty() = %v for %q", got.Empty(), tt.str)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const addrWant = " (want an address or prefix such as 198.18.0.1, 198.18.0.0/15, fd00::1 or fd00::/8)"
	const portWant = " (want a decimal number 1..65535, such as 80)"
	const protoWant = " (want tcp, udp, icmp, icmp6 or an IP protocol number 1..255)"
	const devWant = " (want an interface name of 1 to 15 bytes without '/', ':' or white space, such as eth0)"
	tests := []struct {
		name string
		in   Options
		want string
	}{
		// Addresses and prefixes.
		{"bad ipv4 octet", Options{Saddr: "198.18.0.300"}, `--saddr "198.18.0.300": not an IPv4 or IPv6 address or prefix` + addrWant},
		{"hostname", Options{Daddr: "example.com"}, `--daddr "example.com": not an IPv4 or IPv6 address or prefix` + addrWant},
		{"short ipv4", Options{Addr: "10.1"}, `--addr "10.1": not an IPv4 or IPv6 address or prefix` + addrWant},
		{"bad ipv6", Options{Saddr: "fd00:::1"}, `--saddr "fd00:::1": not an IPv4 or IPv6 address or prefix` + addrWant},
		{"blank address", Options{Saddr: "  "}, `--saddr "  ": empty` + addrWant},
		{"bad prefix address", Options{Saddr: "300.0.0.0/8"}, `--saddr "300.0.0.0/8": not an IPv4 or IPv6 address or prefix` + addrWant},
		{"ipv4 prefix too long", Options{Saddr: "198.18.0.0/33"}, `--saddr "198.18.0.0/33": bad prefix length "33" (want 0..32 for an IPv4 prefix such as 198.18.0.0/15)`},
		{"ipv6 prefix too long", Options{Daddr: "fd00::/129"}, `--daddr "fd00::/129": bad prefix length "129" (want 0..128 for an IPv6 prefix such as fd00::/8)`},
		{"empty prefix length", Options{Addr: "10.0.0.0/"}, `--addr "10.0.0.0/": bad prefix length "" (want 0..32 for an IPv4 prefix such as 198.18.0.0/15)`},
		{"negative prefix length", Options{Addr: "10.0.0.0/-1"}, `--addr "10.0.0.0/-1": bad prefix length "-1" (want 0..32 for an IPv4 prefix such as 198.18.0.0/15)`},
		{"plus prefix length", Options{Addr: "10.0.0.0/+8"}, `--addr "10.0.0.0/+8": bad prefix length "+8" (want 0..32 for an IPv4 prefix such as 198.18.0.0/15)`},
		{"two slashes", Options{Addr: "10.0.0.0/8/8"}, `--addr "10.0.0.0/8/8": bad prefix length "8/8" (want 0..32 for an IPv4 prefix such as 198.18.0.0/15)`},
		{"zone", Options{Saddr: "fe80::1%eth0"}, `--saddr "fe80::1%eth0": an address with a zone (%eth0) is not supported (give the address without it, and --dev eth0 to select the interface)`},
		{"zone in prefix", Options{Saddr: "fe80::1%eth0/64"}, `--saddr "fe80::1%eth0/64": an address with a zone (%eth0) is not supported (give the address without it, and --dev eth0 to select the interface)`},
		{"ipv4 zone", Options{Saddr: "1.2.3.4%eth0"}, `--saddr "1.2.3.4%eth0": not an IPv4 or IPv6 address or prefix` + addrWant},

		// Ports.
		{"port zero", Options{Sport: "0"}, `--sport "0": not a port number` + portWant},
		{"port too large", Options{Dport: "65536"}, `--dport "65536": not a port number` + portWant},
		{"port far too large", Options{Port: "99999999999999999999"}, `--port "99999999999999999999": not a port number` + portWant},
		{"port negative", Options{Port: "-1"}, `--port "-1": not a port number` + portWant},
		{"port plus", Options{Port: "+80"}, `--port "+80": not a port number` + portWant},
		{"port name", Options{Dport: "http"}, `--dport "http": not a port number` + portWant},
		{"port hex", Options{Dport: "0x50"}, `--dport "0x50": not a port number` + portWant},
		{"port range", Options{Dport: "80-90"}, `--dport "80-90": not a port number` + portWant},
		{"port blank", Options{Dport: " "}, `--dport " ": not a port number` + portWant},

		// Protocols.
		{"proto unknown", Options{Proto: "sctpx"}, `--proto "sctpx": unknown protocol` + protoWant},
		{"proto zero", Options{Proto: "0"}, `--proto "0": unknown protocol` + protoWant},
		{"proto too large", Options{Proto: "256"}, `--proto "256": unknown protocol` + protoWant},
		{"proto negative", Options{Proto: "-6"}, `--proto "-6": unknown protocol` + protoWant},
		{"proto blank", Options{Proto: " "}, `--proto " ": unknown protocol` + protoWant},

		// Address families together.
		{"saddr v4 daddr v6", Options{Saddr: "198.18.0.1", Daddr: "fd00::1"}, `--saddr is IPv4 but --daddr is IPv6: no packet can match (give addresses of one family)`},
		{"saddr v6 daddr v4", Options{Saddr: "fd00::/8", Daddr: "198.18.0.0/15"}, `--saddr is IPv6 but --daddr is IPv4: no packet can match (give addresses of one family)`},
		{"saddr v4 addr v6", Options{Saddr: "198.18.0.1", Addr: "::1"}, `--saddr is IPv4 but --addr is IPv6: no packet can match (give addresses of one family)`},
		{"daddr v6 addr v4", Options{Daddr: "::1", Addr: "10.0.0.0/8"}, `--daddr is IPv6 but --addr is IPv4: no packet can match (give addresses of one family)`},
		{"mapped is v4", Options{Saddr: "::ffff:10.0.0.1", Daddr: "fd00::1"}, `--saddr is IPv4 but --daddr is IPv6: no packet can match (give addresses of one family)`},

		// Protocol against family.
		{"icmp with ipv6 saddr", Options{Proto: "icmp", Saddr: "fd00::1"}, `--proto icmp is IPv4 only but --saddr fd00::1 is IPv6: no packet can match (use --proto icmp6)`},
		{"icmp number with ipv6", Options{Proto: "1", Addr: "fd00::/8"}, `--proto icmp is IPv4 only but --addr fd00::/8 is IPv6: no packet can match (use --proto icmp6)`},
		{"icmp6 with ipv4 daddr", Options{Proto: "icmp6", Daddr: "198.18.0.1"}, `--proto icmp6 is IPv6 only but --daddr 198.18.0.1 is IPv4: no packet can match (use --proto icmp)`},
		{"icmpv6 with mapped", Options{Proto: "ipv6-icmp", Daddr: "::ffff:198.18.0.0/112"}, `--proto icmp6 is IPv6 only but --daddr 198.18.0.0/16 is IPv4: no packet can match (use --proto icmp)`},

		// Ports against protocol.
		{"icmp sport", Options{Proto: "icmp", Sport: "80"}, `--sport 80 with --proto icmp: ports apply to tcp and udp only (use --proto tcp or udp, or leave --proto out)`},
		{"icmp6 dport", Options{Proto: "icmp6", Dport: "53"}, `--dport 53 with --proto icmp6: ports apply to tcp and udp only (use --proto tcp or udp, or leave --proto out)`},
		{"other proto port", Options{Proto: "47", Port: "1"}, `--port 1 with --proto 47: ports apply to tcp and udp only (use --proto tcp or udp, or leave --proto out)`},

		// Interface names (checked before looking at the host).
		{"dev too long", Options{Dev: "abcdefghijklmnop"}, `--dev "abcdefghijklmnop": interface name too long: 16 bytes` + devWant},
		{"dev slash", Options{Dev: "a/b"}, `--dev "a/b": interface name contains '/'` + devWant},
		{"dev colon", Options{Dev: "eth0:1"}, `--dev "eth0:1": interface name contains ':'` + devWant},
		{"dev space", Options{Dev: "eth 0"}, `--dev "eth 0": interface name contains ' '` + devWant},
		{"dev tab", Options{Dev: "eth\t0"}, `--dev "eth\t0": interface name contains '\t'` + devWant},
		{"dev newline", Options{Dev: "eth\n0"}, `--dev "eth\n0": interface name contains '\n'` + devWant},
		{"dev NUL", Options{Dev: "eth\x000"}, `--dev "eth\x000": interface name contains '\x00'` + devWant},
		{"dev dot", Options{Dev: "."}, `--dev ".": not an interface name` + devWant},
		{"dev dotdot", Options{Dev: ".."}, `--dev "..": not an interface name` + devWant},
		{"dev bad utf8", Options{Dev: "eth\xff"}, `--dev "eth\xff": interface name is not valid UTF-8` + devWant},

		// The first bad flag is reported; a syntax error comes before a
		// combination error and before any look at the host.
		{"order", Options{Saddr: "fd00::1", Daddr: "1.2.3.4", Sport: "x", Netns: "/nonexistent"}, `--sport "x": not a port number` + portWant},
		{"syntax before host", Options{Proto: "nope", Netns: "/nonexistent", Dev: "lo"}, `--proto "nope": unknown protocol` + protoWant},
		{"combination before host", Options{Saddr: "1.2.3.4", Daddr: "::1", Netns: "/nonexistent"}, `--saddr is IPv4 but --daddr is IPv6: no packet can match (give addresses of one family)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%+v) = %+v, want error %q", tt.in, got, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Parse(%+v) error\n got %s\nwant %s", tt.in, err, tt.want)
			}
			if got != (Filter{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Filter", got)
			}
			checkErr(t, err)
		})
	}
}

func TestEmptyAndString(t *testing.T) {
	tests := []struct {
		f     Filter
		empty bool
		str   string
	}{
		{Filter{}, true, "all packets"},
		{Filter{NetnsName: "x"}, true, "all packets"}, // a name without an inode filters nothing
		{Filter{Proto: 1}, false, "proto icmp"},
		{Filter{Proto: 132}, false, "proto 132"},
		{Filter{Proto: 1, Saddr: pfx("198.18.0.1/32")}, false, "proto icmp, saddr 198.18.0.1"},
		{Filter{Daddr: pfx("0.0.0.0/0")}, false, "daddr 0.0.0.0/0"},
		{Filter{Addr: pfx("::/0")}, false, "addr ::/0"},
		{Filter{Sport: 1}, false, "sport 1"},
		{Filter{Dport: 2}, false, "dport 2"},
		{Filter{Port: 3}, false, "port 3"},
		{Filter{Netns: 4026531840}, false, "netns 4026531840"},
		{Filter{Netns: 4026531840, NetnsName: "4026531840"}, false, "netns 4026531840"},
		{Filter{Netns: 4026531840, NetnsName: "blue"}, false, "netns blue (4026531840)"},
		{Filter{Dev: "eth0"}, false, "dev eth0"},
		{Filter{Proto: 6, Daddr: pfx("10.0.0.0/8"), Dport: 80, Netns: 7, NetnsName: "/proc/1/ns/net", Dev: "veth0"}, false,
			"proto tcp, daddr 10.0.0.0/8, dport 80, netns /proc/1/ns/net (7), dev veth0"},
	}
	for _, tt := range tests {
		if got := tt.f.Empty(); got != tt.empty {
			t.Errorf("%+v.Empty() = %v, want %v", tt.f, got, tt.empty)
		}
		if got := tt.f.String(); got != tt.str {
			t.Errorf("%+v.String() = %q, want %q", tt.f, got, tt.str)
		}
	}
}

func TestProtoName(t *testing.T) {
	for p, want := range map[uint8]string{0: "0", 1: "icmp", 6: "tcp", 17: "udp", 58: "icmp6", 47: "47", 255: "255"} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
	}
}

// Every returned prefix is masked and IPv4-mapped addresses are unmapped,
// whatever the spelling.
func TestPrefixNormalised(t *testing.T) {
	for _, s := range []string{
		"198.18.0.1", "198.18.255.255/15", "0.0.0.0/0", "255.255.255.255/1",
		"fd00::1", "fd00:ffff::1/8", "::/0", "::ffff:1.2.3.4", "::ffff:1.2.3.4/100",
		"::ffff:1.2.3.4/96", "::ffff:1.2.3.4/95", "::ffff:102:304", "::1.2.3.4",
	} {
		f, err := Parse(Options{Saddr: s})
		if err != nil {
			t.Errorf("Parse(saddr %q): %v", s, err)
			continue
		}
		p := f.Saddr
		if p != p.Masked() {
			t.Errorf("saddr %q: %v is not masked", s, p)
		}
		if p.Addr().Is4In6() {
			t.Errorf("saddr %q: %v is IPv4-mapped", s, p)
		}
	}
}
