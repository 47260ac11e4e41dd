package pcapfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// tokKind is the kind of a token of a filter expression.
type tokKind int

const (
	tEOF  tokKind = iota
	tNum          // a number, or a named constant such as tcp-syn
	tHID          // a dotted IPv4 address or prefix: 198.18, 198.18.0.1
	tHID6         // an IPv6 address
	tEID          // a MAC address (link layer)
	tID           // a name: a port, a protocol, a host name
	tKey          // a keyword: host, tcp, and, ...
	tOp           // punctuation and operators: ( ) [ ] : + - * / % & | ^ << >> = == != < <= > >= !
)

type token struct {
	kind tokKind
	text string // the keyword, the operator, the name or the address as written
	num  uint32 // tNum
	pos  int
}

// keywords of pcap-filter(7) that skbtrail supports.
var keywords = map[string]bool{
	"dst": true, "src": true, "host": true, "net": true, "mask": true, "port": true, "portrange": true,
	"proto": true, "protochain": true, "ip": true, "ip6": true, "tcp": true, "udp": true, "icmp": true,
	"icmp6": true, "sctp": true, "igmp": true, "igrp": true, "pim": true, "vrrp": true, "carp": true,
	"ah": true, "esp": true, "less": true, "greater": true, "len": true, "broadcast": true,
	"multicast": true, "and": true, "or": true, "not": true, "gateway": true,
}

// aliases of keywords.
var keywordAlias = map[string]string{"length": "len"}

// linkKeywords are the keywords of pcap-filter(7) that look at the link
// layer (or at link-layer specific metadata), with what to use instead in
// skbtrail.
var linkKeywords = map[string]string{
	"ether": "filter by device with --dev", "link": "filter by device with --dev",
	"ppp": "filter by device with --dev", "slip": "filter by device with --dev",
	"fddi": "filter by device with --dev", "tr": "filter by device with --dev",
	"wlan": "filter by device with --dev", "radio": "filter by device with --dev",
	"arp": notIP, "rarp": notIP,
	"atalk": notIP, "aarp": notIP,
	"decnet": notIP, "lat": notIP,
	"sca": notIP, "moprc": notIP,
	"mopdl": notIP, "iso": notIP,
	"esis": notIP, "es-is": notIP,
	"isis": notIP, "is-is": notIP,
	"l1": notIP, "l2": notIP,
	"iih": notIP, "lsp": notIP,
	"snp": notIP, "csnp": notIP,
	"psnp": notIP, "clnp": notIP,
	"stp": notIP, "ipx": notIP,
	"netbeui": notIP, "llc": notIP,
	"vlan": "filter by device with --dev (a VLAN device)", "mpls": notIP,
	"pppoed": notIP, "pppoes": notIP,
	"geneve": "filter by device with --dev (the tunnel device)", "vxlan": "filter by device with --dev (the tunnel device)",
	"inbound": "filter by device with --dev", "outbound": "filter by device with --dev",
	"ifindex": "filter by device with --dev", "on": "filter by device with --dev", "ifname": "filter by device with --dev",
	"type": "filter by device with --dev", "subtype": "filter by device with --dev",
	"dir": "filter by device with --dev", "direction": "filter by device with --dev",
	"addr1": "filter by device with --dev", "addr2": "filter by device with --dev",
	"addr3": "filter by device with --dev", "addr4": "filter by device with --dev",
	"address1": "filter by device with --dev", "address2": "filter by device with --dev",
	"address3": "filter by device with --dev", "address4": "filter by device with --dev",
	"ra": "filter by device with --dev", "ta": "filter by device with --dev",
	"lane": "filter by device with --dev", "metac": "filter by device with --dev", "bcc": "filter by device with --dev",
	"oam": "filter by device with --dev", "oamf4": "filter by device with --dev", "oamf4ec": "filter by device with --dev",
	"oamf4sc": "filter by device with --dev", "sc": "filter by device with --dev", "ilmic": "filter by device with --dev",
	"vpi": "filter by device with --dev", "vci": "filter by device with --dev", "connectmsg": "filter by device with --dev",
	"metaconnect": "filter by device with --dev", "rnr": "filter by device with --dev", "rulenum": "filter by device with --dev",
	"reason": "filter by device with --dev", "rset": "filter by device with --dev", "ruleset": "filter by device with --dev",
	"srnr": "filter by device with --dev", "subrulenum": "filter by device with --dev", "action": "filter by device with --dev",
	"fisu": "filter by device with --dev", "lssu": "filter by device with --dev", "msu": "filter by device with --dev",
	"lsu": "filter by device with --dev", "hfisu": "filter by device with --dev", "hlssu": "filter by device with --dev",
	"hmsu": "filter by device with --dev", "sio": "filter by device with --dev", "opc": "filter by device with --dev",
	"dpc": "filter by device with --dev", "sls": "filter by device with --dev", "hsio": "filter by device with --dev",
	"hopc": "filter by device with --dev", "hdpc": "filter by device with --dev", "hsls": "filter by device with --dev",
	"byte": "write it as ip[N] instead",
}

// namedNums are the named offsets and constants of pcap-filter(7); they
// are numbers wherever a number may be written.
var namedNums = map[string]uint32{
	"icmptype": 0, "icmpcode": 1,
	"icmp-echoreply": 0, "icmp-unreach": 3, "icmp-sourcequench": 4, "icmp-redirect": 5,
	"icmp-echo": 8, "icmp-routeradvert": 9, "icmp-routersolicit": 10, "icmp-timxceed": 11,
	"icmp-paramprob": 12, "icmp-tstamp": 13, "icmp-tstampreply": 14, "icmp-ireq": 15,
	"icmp-ireqreply": 16, "icmp-maskreq": 17, "icmp-maskreply": 18,
	"icmp6type": 0, "icmp6code": 1,
	"icmp6-destinationunreach": 1, "icmp6-packettoobig": 2, "icmp6-timeexceeded": 3,
	"icmp6-parameterproblem": 4, "icmp6-echo": 128, "icmp6-echoreply": 129,
	"icmp6-multicastlistenerquery": 130, "icmp6-multicastlistenerreportv1": 131,
	"icmp6-multicastlistenerdone": 132, "icmp6-routersolicit": 133, "icmp6-routeradvert": 134,
	"icmp6-neighborsolicit": 135, "icmp6-neighboradvert": 136, "icmp6-redirect": 137,
	"icmp6-routerrenum": 138, "icmp6-nodeinformationquery": 139, "icmp6-nodeinformationresponse": 140,
	"icmp6-ineighbordiscoverysolicit": 141, "icmp6-ineighbordiscoveryadvert": 142,
	"icmp6-multicastlistenerreportv2": 143, "icmp6-homeagentdiscoveryrequest": 144,
	"icmp6-homeagentdiscoveryreply": 145, "icmp6-mobileprefixsolicit": 146,
	"icmp6-mobileprefixadvert": 147, "icmp6-certpathsolicit": 148, "icmp6-certpathadvert": 149,
	"icmp6-multicastrouteradvert": 151, "icmp6-multicastroutersolicit": 152,
	"icmp6-multicastrouterterm": 153,
	"tcpflags":                  13, "tcp-fin": 0x01, "tcp-syn": 0x02, "tcp-rst": 0x04, "tcp-push": 0x08,
	"tcp-ack": 0x10, "tcp-urg": 0x20, "tcp-ece": 0x40, "tcp-cwr": 0x80,
}

// operators, longest first.
var operators = []string{"&&", "||", "<<", ">>", "<=", ">=", "!=", "==",
	"(", ")", "[", "]", ":", "+", "-", "*", "/", "%", "&", "|", "^", "=", "<", ">", "!"}

func isWordStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isWordChar(c byte) bool { return isWordStart(c) || c == '-' || c == '_' || c == '.' }

// lex splits an expression into tokens the way libpcap's scanner does:
// the longest word wins, so "1000-2000" is a name (a port range) and
// "1-1" is not a subtraction.
func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '\\': // an escaped name: \tcp is the name "tcp"
			j := i + 1
			for j < len(s) && !strings.ContainsRune(" !()\n\t", rune(s[j])) {
				j++
			}
			if j == i+1 {
				return nil, syntaxError(i)
			}
			out = append(out, token{kind: tID, text: s[i+1 : j], pos: i})
			i = j
			continue
		case isWordStart(c) || c == ':':
			t, n, err := word(s[i:])
			if err != nil {
				return nil, err
			}
			if n > 0 {
				t.pos = i
				out = append(out, t)
				i += n
				continue
			}
		}
		matched := false
		for _, op := range operators {
			if strings.HasPrefix(s[i:], op) {
				out = append(out, token{kind: tOp, text: op, pos: i})
				i += len(op)
				matched = true
				break
			}
		}
		if !matched {
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return append(out, token{kind: tEOF, pos: len(s)}), nil
}

// word reads the word at the start of s and says how many bytes it took.
func word(s string) (token, int, error) {
	// An address with colons: IPv6, or a MAC address.
	j := 0
	for j < len(s) && (isWordChar(s[j]) || s[j] == ':') {
		j++
	}
	if w := s[:j]; strings.Contains(w, ":") {
		if isMAC(w) {
			return token{kind: tEID, text: w}, j, nil
		}
		if a, err := netip.ParseAddr(w); err == nil && a.Is6() && a.Zone() == "" {
			return token{kind: tHID6, text: w}, j, nil
		}
	}
	if !isWordStart(s[0]) {
		return token{}, 0, nil
	}
	j = 1
	for j < len(s) && isWordChar(s[j]) {
		j++
	}
	for j > 1 && (s[j-1] == '-' || s[j-1] == '_') { // a name ends in a letter, digit or dot
		j--
	}
	w := s[:j]
	if n, ok := parseNum(w); ok {
		return token{kind: tNum, text: w, num: n}, j, nil
	}
	if isHID(w) {
		return token{kind: tHID, text: w}, j, nil
	}
	if isMAC(w) {
		return token{kind: tEID, text: w}, j, nil
	}
	if k, ok := keywordAlias[w]; ok {
		return token{kind: tKey, text: k}, j, nil
	}
	if keywords[w] {
		return token{kind: tKey, text: w}, j, nil
	}
	if hint, ok := linkKeywords[w]; ok {
		return token{}, 0, linkError(w, hint)
	}
	if n, ok := namedNums[w]; ok {
		return token{kind: tNum, text: w, num: n}, j, nil
	}
	return token{kind: tID, text: w}, j, nil
}

// parseNum parses a number as libpcap does: decimal, 0x hexadecimal, or
// octal with a leading 0.
func parseNum(w string) (uint32, bool) {
	base := 10
	d := w
	switch {
	case len(w) > 2 && (w[:2] == "0x" || w[:2] == "0X"):
		base, d = 16, w[2:]
	case len(w) > 1 && w[0] == '0':
		base, d = 8, w[1:]
	}
	for _, c := range []byte(d) {
		if !(c >= '0' && c <= '9' || base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F')) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(d, base, 32)
	if err != nil {
		if base == 8 { // 09: libpcap's octal reader takes the digits as they come
			return 0, false
		}
		return 0, false
	}
	return uint32(n), true
}

// isHID: 1 to 4 dot-separated decimal numbers, at least two.
func isHID(w string) bool {
	parts := strings.Split(w, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

func isHex(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// isMAC: xx:xx:xx:xx:xx:xx, xx-xx-xx-xx-xx-xx or xxxx.xxxx.xxxx.
func isMAC(w string) bool {
	for _, sep := range []string{":", "-"} {
		parts := strings.Split(w, sep)
		if len(parts) == 6 {
			ok := true
			for _, p := range parts {
				ok = ok && isHex(p, 2)
			}
			if ok {
				return true
			}
		}
	}
	parts := strings.Split(w, ".")
	if len(parts) == 3 && !isHID(w) {
		ok := true
		for _, p := range parts {
			ok = ok && isHex(p, 4)
		}
		return ok
	}
	return false
}

// atoin parses a dotted IPv4 address or prefix (1 to 4 numbers) into its
// value, left-aligned as written ("198.18" is 198.18.0.0 with 16 bits).
func atoin(s string) (uint32, int, error) {
	var v uint32
	bits := 0
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.ParseUint(p, 10, 32)
		if err != nil || n > 255 {
			return 0, 0, fmt.Errorf("invalid IPv4 address %q", s)
		}
		v = v<<8 | uint32(n)
		bits += 8
	}
	return v, bits, nil
}
