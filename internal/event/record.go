package event

import "unsafe"

// Record is the layout of one ring buffer record as the BPF programs write
// it (struct event in bpf/skbtrail.h). The probe packages check, in their
// tests, that it matches what bpf2go generates from the C, so a change on
// either side is caught there.
type Record struct {
	Ts       uint64 // bpf_ktime_get_ns
	Skb      uint64 // skb address; 0 for probes without one
	Location uint64 // kfree_skb: the dropping caller; function probes: the function
	Probe    uint32 // a Probe
	Cpu      uint32
	Pid      uint32
	Netns    uint32 // inode of the packet's network namespace
	Ifindex  uint32
	Len      uint32
	Mark     uint32
	Reason   uint32 // kfree_skb: enum skb_drop_reason
	Ret      int32  // return code or error where the probe has one
	Aux      uint32 // probe specific (see Decode)
	Aux2     uint32 // probe specific
	Flags    uint32 // Flag*
	Pkt      RecordPacket
	Ifname   [16]int8
	Comm     [16]int8
	Head     uint64 // skb->head: clones share it with their original
}

// RecordPacket is struct pkt (bpf/packet.h): the L3/L4 summary a probe read.
type RecordPacket struct {
	Saddr    [16]uint8
	Daddr    [16]uint8
	Family   uint8 // 4, 6, or 0 when unknown
	L4       uint8 // IPPROTO_*
	TcpFlags uint8
	Ttl      uint8
	Sport    uint16 // host byte order
	Dport    uint16
	IcmpType uint8
	IcmpCode uint8
	IcmpId   uint16
	IcmpSeq  uint16
	IpLen    uint16
	TcpSeq   uint32
	TcpAck   uint32
}

// RecordSize is the size of one Record in the ring buffer.
const RecordSize = int(unsafe.Sizeof(Record{}))

// DataHeaderSize is the size of the header of the packet bytes that follow
// a Record when a snapshot length is set (struct event_data): a
// native-endian uint32 caplen and 4 bytes of padding, then snaplen bytes
// of which the first caplen are the packet's, from its IP header on.
const DataHeaderSize = 8

// MaxSnaplen is the largest snapshot length the programs take.
const MaxSnaplen = 65535

// Record flags (EV_* in bpf/skbtrail.h).
const (
	FlagParsed   = 1 // Pkt holds headers read at this probe
	FlagFromSock = 2 // Pkt was filled from a socket, not from headers
	FlagFlow     = 4 // Pkt is a route lookup's flow: zero fields are unknown
)

// DropKey is what `skbtrail drops` counts drops by, in the kernel.
type DropKey struct {
	Location uint64 // kernel text address of the caller of kfree_skb
	Reason   uint32 // enum skb_drop_reason code
	Netns    uint32 // network namespace inode; 0: unknown
	Ifname   string // the skb's device; "" when it had none
	Stack    int32  // id in the stack map when stacks are recorded, else -1
}

// DropCount is a key's count since counting began, summed over CPUs.
type DropCount struct {
	Key   DropKey
	Count uint64
}
