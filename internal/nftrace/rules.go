package nftrace

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/filter"
)

// Hooks of the marking chains.
const (
	hookPrerouting = iota
	hookOutput
)

// markRules returns the expressions of the rules that set nftrace for the
// packets f selects, in the chain on hook. A filter with alternatives
// (--addr: source or destination, --port: source or destination port, ports
// without --proto: tcp or udp) gives one rule per combination, as a packet
// matches when any rule does. Every rule ends with `meta nftrace set 1`.
func markRules(f filter.Filter, hook int) [][]expr.Any {
	var base []expr.Any
	addr := func(e []expr.Any, p netip.Prefix, src bool) []expr.Any {
		if !p.IsValid() {
			return e
		}
		return append(e, matchAddr(p, src)...)
	}
	if fam, ok := family(f); ok {
		base = append(base, matchMeta(expr.MetaKeyNFPROTO, []byte{fam})...)
	}
	if f.Dev != "" {
		key := expr.MetaKeyIIFNAME
		if hook == hookOutput {
			key = expr.MetaKeyOIFNAME
		}
		name := make([]byte, unix.IFNAMSIZ)
		copy(name, f.Dev)
		base = append(base, matchMeta(key, name)...)
	}
	base = addr(base, f.Saddr, true)
	base = addr(base, f.Daddr, false)

	addrAlts := [][]expr.Any{nil}
	if f.Addr.IsValid() {
		addrAlts = [][]expr.Any{matchAddr(f.Addr, true), matchAddr(f.Addr, false)}
	}
	protos := []uint8{f.Proto}
	ports := f.Sport != 0 || f.Dport != 0 || f.Port != 0
	if f.Proto == 0 && ports {
		protos = []uint8{filter.ProtoTCP, filter.ProtoUDP}
	}
	portAlts := [][]expr.Any{nil}
	if f.Port != 0 {
		portAlts = [][]expr.Any{matchPort(f.Port, true), matchPort(f.Port, false)}
	}

	var rules [][]expr.Any
	for _, a := range addrAlts {
		for _, proto := range protos {
			for _, p := range portAlts {
				r := append([]expr.Any{}, base...)
				r = append(r, a...)
				if proto != 0 {
					r = append(r, matchMeta(expr.MetaKeyL4PROTO, []byte{proto})...)
				}
				if f.Sport != 0 {
					r = append(r, matchPort(f.Sport, true)...)
				}
				if f.Dport != 0 {
					r = append(r, matchPort(f.Dport, false)...)
				}
				r = append(r, p...)
				r = append(r,
					&expr.Immediate{Register: 1, Data: []byte{1}},
					&expr.Meta{Key: expr.MetaKeyNFTRACE, SourceRegister: true, Register: 1})
				rules = append(rules, r)
			}
		}
	}
	return rules
}

// family returns the NFPROTO_* value the filter's addresses or ICMP
// protocol imply. The filter package has already rejected mixed families.
func family(f filter.Filter) (uint8, bool) {
	for _, p := range []netip.Prefix{f.Saddr, f.Daddr, f.Addr} {
		if p.IsValid() {
			if p.Addr().Is4() {
				return unix.NFPROTO_IPV4, true
			}
			return unix.NFPROTO_IPV6, true
		}
	}
	switch f.Proto {
	case filter.ProtoICMP:
		return unix.NFPROTO_IPV4, true
	case filter.ProtoICMPv6:
		return unix.NFPROTO_IPV6, true
	}
	return 0, false
}

// matchMeta is `meta KEY == value`.
func matchMeta(key expr.MetaKey, value []byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: value},
	}
}

// matchAddr is `ip saddr PREFIX` (or daddr, or ip6): load the address from
// the network header, mask it unless the prefix is a single address, and
// compare. A /0 prefix matches every address of the family, which the
// nfproto match already checks.
func matchAddr(p netip.Prefix, src bool) []expr.Any {
	p = p.Masked()
	off, n := uint32(16), uint32(4) // struct iphdr: saddr at 12, daddr at 16
	if src {
		off = 12
	}
	if p.Addr().Is6() {
		off, n = 24, 16 // struct ipv6hdr: saddr at 8, daddr at 24
		if src {
			off = 8
		}
	}
	if p.Bits() == 0 {
		return nil
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}}
	if p.Bits() < p.Addr().BitLen() {
		mask := make([]byte, n)
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: n, Mask: mask, Xor: make([]byte, n)})
	}
	return append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Addr().AsSlice()})
}

// matchPort is `th sport PORT` (or dport): the first or second 16 bits of
// the transport header. Callers put an l4proto match (tcp or udp) first.
func matchPort(port uint16, src bool) []expr.Any {
	off := uint32(2)
	if src {
		off = 0
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, port)},
	}
}
