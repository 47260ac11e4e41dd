package nftrace

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/skbtrail/skbtrail/internal/event"
)

// Event is one step of a traced packet through the ruleset: a rule that
// matched, a chain that returned, or a base chain's policy.
type Event struct {
	Time time.Time // when skbtrail read the event (the kernel does not stamp them)
	// ID is the kernel's trace id: the same for every event of one packet
	// (derived from the skb), so events can be grouped by packet.
	ID      uint32
	Family  string // table family as nft names it: "ip", "ip6", "inet", "arp", "bridge", "netdev"
	Table   string
	Chain   string
	Handle  uint64 // rule handle, as `nft -a list` shows it; 0 for a policy event
	Type    string // "rule", "return" or "policy"
	Verdict string // "accept", "drop", "continue", "jump CHAIN", "goto CHAIN", "return", "queue", "stolen", ...
	// NFProto is the packet's protocol family as nft names it ("ip" or "ip6"
	// for a packet in an inet table).
	NFProto  string
	Iif, Oif uint32 // interface indexes, 0 = none
	Mark     uint32
	// Packet is parsed from the headers the kernel copies into the first
	// event of each packet in each base chain; the Tracer copies it, and
	// Iif and Oif, into the packet's later events.
	Packet Packet
	// Rule is the rule as `nft -a list` prints it (without the handle
	// comment and with counter values left out), "" when unknown or when
	// nft is not installed.
	Rule string
}

// Packet holds the addresses and ports of a traced packet.
type Packet struct {
	Src, Dst     netip.Addr // invalid when the event carried no network header
	Proto        uint8      // IP protocol (IPv6: the fixed header's next header)
	Sport, Dport uint16     // TCP, UDP, UDP-Lite, SCTP and DCCP
	ICMPType     uint8      // ICMP and ICMPv6, with Proto 1 or 58
	ICMPCode     uint8
	ICMPID       uint16 // the rest of the ICMP header: id and sequence for echo
	ICMPSeq      uint16
}

// Event returns the packet as the probes see one (event.Packet): ports only
// for TCP and UDP, as the probes read them, so that the filter decides the
// same for a traced packet as in the kernel (filter.Filter.Match).
func (p Packet) Event() event.Packet {
	e := event.Packet{
		Source: event.FromHeaders, Src: p.Src, Dst: p.Dst, Proto: p.Proto,
		ICMPType: p.ICMPType, ICMPCode: p.ICMPCode, ICMPID: p.ICMPID, ICMPSeq: p.ICMPSeq,
	}
	switch {
	case p.Src.Is4():
		e.Family = 4
	case p.Src.Is6():
		e.Family = 6
	}
	if p.Proto == 6 || p.Proto == 17 {
		e.Sport, e.Dport = p.Sport, p.Dport
	}
	return e
}

// Attribute numbers of NFT_MSG_TRACE and its verdict, from the kernel's
// include/uapi/linux/netfilter/nf_tables.h (enum nft_trace_attributes,
// enum nft_verdict_attributes, enum nft_trace_types), as golang.org/x/sys
// exports them.
const (
	attrTable     = unix.NFTA_TRACE_TABLE
	attrChain     = unix.NFTA_TRACE_CHAIN
	attrHandle    = unix.NFTA_TRACE_RULE_HANDLE
	attrType      = unix.NFTA_TRACE_TYPE
	attrVerdict   = unix.NFTA_TRACE_VERDICT
	attrID        = unix.NFTA_TRACE_ID
	attrNetHeader = unix.NFTA_TRACE_NETWORK_HEADER
	attrTHeader   = unix.NFTA_TRACE_TRANSPORT_HEADER
	attrIif       = unix.NFTA_TRACE_IIF
	attrOif       = unix.NFTA_TRACE_OIF
	attrMark      = unix.NFTA_TRACE_MARK
	attrNFProto   = unix.NFTA_TRACE_NFPROTO
	attrPolicy    = unix.NFTA_TRACE_POLICY
)

// Netfilter verdicts, from include/uapi/linux/netfilter.h, and the mask of
// an attribute type without its NLA_F_NESTED and NLA_F_NET_BYTEORDER flags
// (include/uapi/linux/netlink.h); golang.org/x/sys does not export them.
const (
	nfDrop   = 0
	nfAccept = 1
	nfStolen = 2
	nfQueue  = 3
	nfRepeat = 4
	nfStop   = 5

	nlaTypeMask = 0x3fff
)

// isTrace reports whether a netlink message type is NFT_MSG_TRACE of the
// nf_tables subsystem.
func isTrace(t netlink.HeaderType) bool {
	return uint16(t) == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_TRACE
}

// decode decodes the payload of an NFT_MSG_TRACE message: the nfgenmsg
// header (family, version, resource id) and the trace attributes. All
// numbers are big-endian. It never panics, whatever b holds.
func decode(b []byte) (Event, error) {
	var e Event
	if len(b) < 4 {
		return e, fmt.Errorf("trace message of %d bytes: shorter than its 4-byte header", len(b))
	}
	e.Family = familyName(b[0])
	attrs, err := netlink.UnmarshalAttributes(b[4:])
	if err != nil {
		return e, fmt.Errorf("trace message attributes: %w", err)
	}
	var (
		typ            uint32
		policy         uint32
		hasPolicy      bool
		netHdr, trHdr  []byte
		verdictPresent bool
	)
	for _, a := range attrs {
		d := a.Data
		switch a.Type & nlaTypeMask {
		case attrTable:
			e.Table = cstring(d)
		case attrChain:
			e.Chain = cstring(d)
		case attrHandle:
			if len(d) == 8 {
				e.Handle = binary.BigEndian.Uint64(d)
			}
		case attrType:
			typ, _ = be32(d)
		case attrID:
			e.ID, _ = be32(d)
		case attrIif:
			e.Iif, _ = be32(d)
		case attrOif:
			e.Oif, _ = be32(d)
		case attrMark:
			e.Mark, _ = be32(d)
		case attrNFProto:
			if v, ok := be32(d); ok {
				e.NFProto = familyName(uint8(v))
			}
		case attrPolicy:
			policy, hasPolicy = be32(d)
		case attrNetHeader:
			netHdr = d
		case attrTHeader:
			trHdr = d
		case attrVerdict:
			v, err := decodeVerdict(d)
			if err != nil {
				return e, err
			}
			e.Verdict, verdictPresent = v, true
		}
	}
	e.Type = traceType(typ)
	if !verdictPresent && hasPolicy {
		e.Verdict = verdictName(int32(policy), "")
	}
	e.Packet = parsePacket(netHdr, trHdr)
	return e, nil
}

// decodeVerdict decodes a nested NFTA_TRACE_VERDICT (enum
// nft_verdict_attributes: NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN).
func decodeVerdict(b []byte) (string, error) {
	attrs, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		return "", fmt.Errorf("trace verdict: %w", err)
	}
	var (
		code  uint32
		chain string
	)
	for _, a := range attrs {
		switch a.Type & nlaTypeMask {
		case unix.NFTA_VERDICT_CODE:
			code, _ = be32(a.Data)
		case unix.NFTA_VERDICT_CHAIN:
			chain = cstring(a.Data)
		}
	}
	return verdictName(int32(code), chain), nil
}

// verdictName spells a verdict as nft does. Netfilter verdicts (>= 0) keep
// extra data in their upper bits (a queue number, a drop errno), so only the
// low byte names them.
func verdictName(code int32, chain string) string {
	switch code {
	case unix.NFT_CONTINUE:
		return "continue"
	case unix.NFT_BREAK:
		return "break"
	case unix.NFT_JUMP:
		return "jump " + chain
	case unix.NFT_GOTO:
		return "goto " + chain
	case unix.NFT_RETURN:
		return "return"
	}
	if code < 0 {
		return "verdict " + strconv.Itoa(int(code))
	}
	switch code & 0xff {
	case nfDrop:
		return "drop"
	case nfAccept:
		return "accept"
	case nfStolen:
		return "stolen"
	case nfQueue:
		return "queue"
	case nfRepeat:
		return "repeat"
	case nfStop:
		return "stop"
	}
	return "verdict " + strconv.Itoa(int(code))
}

func traceType(t uint32) string {
	switch t {
	case unix.NFT_TRACETYPE_RULE:
		return "rule"
	case unix.NFT_TRACETYPE_RETURN:
		return "return"
	case unix.NFT_TRACETYPE_POLICY:
		return "policy"
	}
	return "type " + strconv.FormatUint(uint64(t), 10)
}

// familyName names an NFPROTO_* value as nft's family keyword.
func familyName(f uint8) string { return event.Family(f).String() }

// parsePacket parses the network and transport header bytes of a trace
// event. The kernel copies at most 40 bytes of the network header (up to the
// transport header) and 20 of the transport header, so IPv6 extension
// headers hide the transport protocol: Proto is then the extension header
// and the ports stay zero.
func parsePacket(nh, th []byte) Packet {
	var p Packet
	if len(nh) == 0 {
		return p
	}
	first := true // the transport header starts the L4 header (not a later fragment)
	switch nh[0] >> 4 {
	case 4:
		if len(nh) < 20 {
			return p
		}
		p.Src = netip.AddrFrom4([4]byte(nh[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(nh[16:20]))
		p.Proto = nh[9]
		first = binary.BigEndian.Uint16(nh[6:8])&0x1fff == 0
	case 6:
		if len(nh) < 40 {
			return p
		}
		p.Src = netip.AddrFrom16([16]byte(nh[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(nh[24:40]))
		p.Proto = nh[6]
	default:
		return p
	}
	if !first {
		return p
	}
	switch p.Proto {
	case unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_SCTP, unix.IPPROTO_DCCP:
		if len(th) >= 4 {
			p.Sport = binary.BigEndian.Uint16(th[0:2])
			p.Dport = binary.BigEndian.Uint16(th[2:4])
		}
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
		if len(th) >= 2 {
			p.ICMPType, p.ICMPCode = th[0], th[1]
		}
		if len(th) >= 8 {
			p.ICMPID = binary.BigEndian.Uint16(th[4:6])
			p.ICMPSeq = binary.BigEndian.Uint16(th[6:8])
		}
	}
	return p
}

func be32(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// cstring returns a NUL-terminated netlink string without its NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
