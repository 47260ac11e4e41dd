package filter

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary strings to every field. Parse must never panic;
// an error must have the package's shape, and a Filter must be normalised.
func FuzzParse(f *testing.F) {
	seeds := []Options{
		{},
		{Saddr: "198.18.0.1", Proto: "icmp"},
		{Daddr: "198.18.0.0/15", Dport: "80", Proto: "tcp"},
		{Addr: "fd00::/8", Port: "53", Proto: "udp"},
		{Saddr: "::ffff:1.2.3.4/120", Sport: "65535"},
		{Saddr: "fe80::1%eth0", Daddr: "1.2.3.4"},
		{Proto: "ipv6-icmp", Daddr: "fd00::1"},
		{Proto: "255", Port: "0"},
		{Netns: "/proc/self/ns/net", Dev: "lo"},
		{Netns: "net:[x]"},
		{Netns: "skbtrail-ft-none", Dev: "eth0"},
		{Dev: "a/b:c d"},
	}
	for _, s := range seeds {
		f.Add(s.Saddr, s.Daddr, s.Addr, s.Sport, s.Dport, s.Port, s.Proto, s.Netns, s.Dev)
	}
	f.Fuzz(func(t *testing.T, saddr, daddr, addr, sport, dport, port, proto, netns, dev string) {
		// A namespace path could name any file on the host; keep the fuzzer
		// to /proc and /run/netns and to names and numbers. Parse only
		// stats such files, but nothing is gained by walking the disk.
		if strings.Contains(netns, "/") && !strings.HasPrefix(netns, "/proc/") && !strings.HasPrefix(netns, "/run/netns/") {
			netns = "/proc/self/" + netns
		}
		o := Options{Saddr: saddr, Daddr: daddr, Addr: addr, Sport: sport, Dport: dport, Port: port, Proto: proto, Netns: netns, Dev: dev}
		got, err := Parse(o)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %q does not wrap ErrInvalid", err)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "--") {
				t.Fatalf("error %q is not one line starting with a flag", msg)
			}
			if got != (Filter{}) {
				t.Fatalf("non-zero Filter %+v with error %v", got, err)
			}
			return
		}
		for _, p := range []struct {
			in string
			p  netip.Prefix
		}{{saddr, got.Saddr}, {daddr, got.Daddr}, {addr, got.Addr}} {
			if (p.in == "") == p.p.IsValid() {
				t.Fatalf("%q parsed to %v", p.in, p.p)
			}
			if p.p.IsValid() && (p.p != p.p.Masked() || p.p.Addr().Is4In6() || p.p.Addr().Zone() != "") {
				t.Fatalf("%q parsed to %v: not masked, unmapped and zone-free", p.in, p.p)
			}
		}
		for _, pf := range []struct {
			name string
			ok   bool
		}{
			{"netns given", (netns == "") == (got.Netns == 0)},
			{"dev kept", got.Dev == dev},
			{"empty", got.Empty() == (o == Options{})},
		} {
			if !pf.ok {
				t.Fatalf("%s fails for %+v -> %+v", pf.name, o, got)
			}
		}
		if s := got.String(); s == "" || strings.ContainsAny(s, "\n\r") && !strings.ContainsAny(netns, "\n\r") {
			t.Fatalf("String() = %q", s)
		}
	})
}
