// Package filter turns the user's packet-selection flags into a validated
// Filter that the probes check in the kernel.
//
// Parse checks every flag on its own (syntax, ranges) and then the flags
// together (address families, protocol against family, ports against
// protocol), and only then looks at the host to resolve --netns and check
// --dev. It does not know the BPF layout: the probe package converts a
// Filter into what the kernel programs read. Parsing changes nothing on the
// host: it stats and opens namespace files read-only and asks rtnetlink
// about links.
//
// Every error Parse returns is one line, starts with the flag it is about
// (for example `--saddr "198.18.0.300": not an IPv4 or IPv6 address or
// prefix ...`), says what would be accepted, and wraps ErrInvalid, so the
// command line can map it to exit status 2 with errors.Is. When a system
// call failed on the way (for example a permission error while looking into
// a namespace) the error wraps that cause too.
package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid packet filter")

// IP protocol numbers the package knows by name.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// Options are the flags as the user typed them ("" / zero = not given).
type Options struct {
	// Saddr, Daddr and Addr are an address or a prefix:
	// "198.18.0.1", "198.18.0.0/15", "fd00::1", "fd00::/8".
	// Addr matches the source or the destination.
	Saddr, Daddr, Addr string
	// Sport, Dport and Port are decimal port numbers 1..65535 ("80").
	// Port matches the source or the destination port.
	Sport, Dport, Port string
	// Proto is "tcp", "udp", "icmp", "icmp6" ("icmpv6", "ipv6-icmp"),
	// case-insensitive, or an IP protocol number 1..255.
	Proto string
	// Netns is a name under /run/netns, a path to a namespace file
	// (/proc/1234/ns/net, /run/netns/x), or a network namespace inode
	// number (also accepted as "net:[4026531840]", as readlink shows it).
	// An inode must belong to a namespace that exists: one under
	// /run/netns, or one a process or thread is in or holds open, found
	// under /proc. Without root only the caller's own processes are visible
	// there, so run as root to find every namespace. A number that is also
	// a name under /run/netns is taken as the name.
	Netns string
	// NetnsLabel, when set, names the namespace in messages instead of
	// Netns: "pod default/web" when Netns came from --pod and the like.
	NetnsLabel string
	// Dev is an interface name: 1..15 bytes, no '/', ':' or white space.
	// With Netns it must exist in that namespace; without, in the current
	// namespace or in one under /run/netns (the probes then match it by
	// name in every namespace). Looking into other namespaces needs root.
	Dev string
}

// Filter is a validated packet filter. The zero Filter matches every packet.
type Filter struct {
	Saddr, Daddr, Addr netip.Prefix // !IsValid() = any; single address = /32 or /128
	Sport, Dport, Port uint16       // 0 = any
	Proto              uint8        // 0 = any
	Netns              uint32       // netns inode; 0 = any
	NetnsName          string       // what the user gave, for messages
	Dev                string       // "" = any
}

// flagError is the one error type of the package: a one-line message that
// starts with the flag name, wrapping ErrInvalid and, optionally, a cause.
type flagError struct {
	msg   string
	cause error
}

func (e *flagError) Error() string { return e.msg }

func (e *flagError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalid, e.cause}
	}
	return []error{ErrInvalid}
}

func errorf(format string, args ...any) error {
	return &flagError{msg: oneLine(fmt.Sprintf(format, args...))}
}

func causef(cause error, format string, args ...any) error {
	return &flagError{msg: oneLine(fmt.Sprintf(format, args...)), cause: cause}
}

// oneLine keeps a message on one line whatever a cause's text contains.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// Parse validates the user's flags and returns the Filter they describe.
// See the package documentation for the errors it returns. On error the
// returned Filter is the zero Filter.
func Parse(o Options) (Filter, error) {
	f, err := parse(o)
	if err != nil {
		return Filter{}, err
	}
	return f, nil
}

func parse(o Options) (Filter, error) {
	var f Filter
	var err error

	// Each flag on its own.
	if f.Saddr, err = parsePrefix("--saddr", o.Saddr); err != nil {
		return f, err
	}
	if f.Daddr, err = parsePrefix("--daddr", o.Daddr); err != nil {
		return f, err
	}
	if f.Addr, err = parsePrefix("--addr", o.Addr); err != nil {
		return f, err
	}
	if f.Sport, err = parsePort("--sport", o.Sport); err != nil {
		return f, err
	}
	if f.Dport, err = parsePort("--dport", o.Dport); err != nil {
		return f, err
	}
	if f.Port, err = parsePort("--port", o.Port); err != nil {
		return f, err
	}
	if f.Proto, err = parseProto(o.Proto); err != nil {
		return f, err
	}
	if o.Dev != "" {
		if err := checkDevName(o.Dev); err != nil {
			return f, err
		}
	}

	// The flags together.
	if err := checkCombination(f); err != nil {
		return f, err
	}

	// The host: namespace and interface.
	var nsPath string
	if o.Netns != "" {
		ino, path, err := resolveNetns(o.Netns)
		if err != nil {
			return f, err
		}
		f.Netns, f.NetnsName, nsPath = ino, o.Netns, path
		if o.NetnsLabel != "" {
			f.NetnsName = o.NetnsLabel
		}
	}
	if o.Dev != "" {
		if err := checkDev(o.Dev, o.Netns, f.Netns, nsPath); err != nil {
			return f, err
		}
		f.Dev = o.Dev
	}
	return f, nil
}

const addrWant = "want an address or prefix such as 198.18.0.1, 198.18.0.0/15, fd00::1 or fd00::/8"

// parsePrefix parses an address or a prefix. A single address becomes a
// /32 or /128 prefix, an IPv4-mapped IPv6 address or prefix becomes IPv4,
// and host bits are masked off.
func parsePrefix(flag, s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	t := strings.TrimSpace(s)
	if t == "" {
		return netip.Prefix{}, errorf("%s %q: empty (%s)", flag, s, addrWant)
	}
	addrPart, bitsPart, hasBits := strings.Cut(t, "/")
	if i := strings.IndexByte(addrPart, '%'); i >= 0 {
		if a, err := netip.ParseAddr(addrPart); err == nil && a.Zone() != "" {
			return netip.Prefix{}, errorf("%s %q: an address with a zone (%%%s) is not supported (give the address without it, and --dev %s to select the interface)",
				flag, s, a.Zone(), a.Zone())
		}
		return netip.Prefix{}, errorf("%s %q: not an IPv4 or IPv6 address or prefix (%s)", flag, s, addrWant)
	}
	addr, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, errorf("%s %q: not an IPv4 or IPv6 address or prefix (%s)", flag, s, addrWant)
	}
	bits := addr.BitLen()
	if hasBits {
		n, err := strconv.ParseUint(bitsPart, 10, 8)
		if err != nil || bitsPart == "" || bitsPart[0] == '+' || int(n) > addr.BitLen() {
			fam := "IPv4"
			if addr.Is6() {
				fam = "IPv6"
			}
			return netip.Prefix{}, errorf("%s %q: bad prefix length %q (want 0..%d for an %s prefix such as %s)",
				flag, s, bitsPart, addr.BitLen(), fam, map[bool]string{false: "198.18.0.0/15", true: "fd00::/8"}[addr.Is6()])
		}
		bits = int(n)
	}
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	p, err := addr.Prefix(bits)
	if err != nil { // not reachable: addr has no zone and bits is in range
		return netip.Prefix{}, errorf("%s %q: not an IPv4 or IPv6 address or prefix (%s)", flag, s, addrWant)
	}
	return p, nil
}

// parsePort parses a decimal port number 1..65535.
func parsePort(flag, s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.TrimSpace(s)
	n, err := strconv.ParseUint(t, 10, 16)
	if err != nil || n == 0 || t == "" || t[0] == '+' {
		return 0, errorf("%s %q: not a port number (want a decimal number 1..65535, such as 80)", flag, s)
	}
	return uint16(n), nil
}

// parseProto parses a protocol name or number.
func parseProto(s string) (uint8, error) {
	if s == "" {
		return 0, nil
	}
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	case "icmp":
		return ProtoICMP, nil
	case "icmp6", "icmpv6", "ipv6-icmp":
		return ProtoICMPv6, nil
	}
	n, err := strconv.ParseUint(t, 10, 8)
	if err != nil || n == 0 || t == "" || t[0] == '+' {
		return 0, errorf("--proto %q: unknown protocol (want tcp, udp, icmp, icmp6 or an IP protocol number 1..255)", s)
	}
	return uint8(n), nil
}

// ProtoName returns the name Parse knows proto by ("tcp", "udp", "icmp",
// "icmp6"), or its number in decimal.
func ProtoName(proto uint8) string {
	switch proto {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMP:
		return "icmp"
	case ProtoICMPv6:
		return "icmp6"
	}
	return strconv.Itoa(int(proto))
}

type namedPrefix struct {
	flag string
	p    netip.Prefix
}

func family(p netip.Prefix) string {
	if p.Addr().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func showPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// checkCombination rejects flags that no packet can match together.
func checkCombination(f Filter) error {
	var addrs []namedPrefix
	for _, np := range []namedPrefix{{"--saddr", f.Saddr}, {"--daddr", f.Daddr}, {"--addr", f.Addr}} {
		if np.p.IsValid() {
			addrs = append(addrs, np)
		}
	}
	for i := range addrs {
		for j := i + 1; j < len(addrs); j++ {
			a, b := addrs[i], addrs[j]
			if a.p.Addr().Is4() != b.p.Addr().Is4() {
				return errorf("%s is %s but %s is %s: no packet can match (give addresses of one family)",
					a.flag, family(a.p), b.flag, family(b.p))
			}
		}
	}
	if len(addrs) > 0 {
		a := addrs[0]
		switch {
		case f.Proto == ProtoICMP && a.p.Addr().Is6():
			return errorf("--proto icmp is IPv4 only but %s %s is IPv6: no packet can match (use --proto icmp6)",
				a.flag, showPrefix(a.p))
		case f.Proto == ProtoICMPv6 && a.p.Addr().Is4():
			return errorf("--proto icmp6 is IPv6 only but %s %s is IPv4: no packet can match (use --proto icmp)",
				a.flag, showPrefix(a.p))
		}
	}
	if f.Proto != 0 && f.Proto != ProtoTCP && f.Proto != ProtoUDP {
		for _, p := range []struct {
			flag string
			port uint16
		}{{"--sport", f.Sport}, {"--dport", f.Dport}, {"--port", f.Port}} {
			if p.port != 0 {
				return errorf("%s %d with --proto %s: ports apply to tcp and udp only (use --proto tcp or udp, or leave --proto out)",
					p.flag, p.port, ProtoName(f.Proto))
			}
		}
	}
	return nil
}

// Empty reports whether the filter selects nothing, that is, matches every
// packet.
func (f Filter) Empty() bool {
	return !f.Saddr.IsValid() && !f.Daddr.IsValid() && !f.Addr.IsValid() &&
		f.Sport == 0 && f.Dport == 0 && f.Port == 0 &&
		f.Proto == 0 && f.Netns == 0 && f.Dev == ""
}

// String returns a short human summary such as
// "proto icmp, saddr 198.18.0.1", or "all packets" for the empty filter.
func (f Filter) String() string {
	var parts []string
	if f.Proto != 0 {
		parts = append(parts, "proto "+ProtoName(f.Proto))
	}
	for _, np := range []namedPrefix{{"saddr", f.Saddr}, {"daddr", f.Daddr}, {"addr", f.Addr}} {
		if np.p.IsValid() {
			parts = append(parts, np.flag+" "+showPrefix(np.p))
		}
	}
	for _, p := range []struct {
		name string
		port uint16
	}{{"sport", f.Sport}, {"dport", f.Dport}, {"port", f.Port}} {
		if p.port != 0 {
			parts = append(parts, p.name+" "+strconv.Itoa(int(p.port)))
		}
	}
	if f.Netns != 0 {
		ino := strconv.FormatUint(uint64(f.Netns), 10)
		switch f.NetnsName {
		case "", ino:
			parts = append(parts, "netns "+ino)
		default:
			parts = append(parts, "netns "+f.NetnsName+" ("+ino+")")
		}
	}
	if f.Dev != "" {
		parts = append(parts, "dev "+f.Dev)
	}
	if len(parts) == 0 {
		return "all packets"
	}
	return strings.Join(parts, ", ")
}
