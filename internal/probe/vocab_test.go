package probe

import (
	"reflect"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

// TestRecordLayout: event.Record, which every stage above the probes
// decodes, has the layout bpf2go generates from struct event in
// bpf/skbtrail.h: the same fields, types, sizes and offsets.
func TestRecordLayout(t *testing.T) {
	sameLayout(t, reflect.TypeOf(event.Record{}), reflect.TypeOf(tracepointEvent{}))
}

func sameLayout(t *testing.T, want, got reflect.Type) {
	t.Helper()
	if want.Size() != got.Size() {
		t.Fatalf("%s is %d bytes, the BPF side's %s %d", want, want.Size(), got, got.Size())
	}
	var fields []reflect.StructField
	for i := 0; i < got.NumField(); i++ {
		if f := got.Field(i); f.Name != "_" {
			fields = append(fields, f)
		}
	}
	if want.NumField() != len(fields) {
		t.Fatalf("%s has %d fields, the BPF side's %d", want, want.NumField(), len(fields))
	}
	for i, g := range fields {
		w := want.Field(i)
		if w.Name != g.Name || w.Offset != g.Offset || w.Type.Size() != g.Type.Size() || w.Type.Kind() != g.Type.Kind() {
			t.Errorf("field %d: %s %s at %d, the BPF side has %s %s at %d", i, w.Name, w.Type, w.Offset, g.Name, g.Type, g.Offset)
			continue
		}
		if g.Type.Kind() == reflect.Struct {
			sameLayout(t, w.Type, g.Type)
		}
	}
}

// TestProbeIDs: the probe ids the BPF programs write are the ones the
// vocabulary names.
func TestProbeIDs(t *testing.T) {
	ids := map[event.Probe]uint32{
		event.NetifReceiveSkb:      uint32(tracepointProbeIdPROBE_NETIF_RECEIVE_SKB),
		event.NetDevQueue:          uint32(tracepointProbeIdPROBE_NET_DEV_QUEUE),
		event.NetDevStartXmit:      uint32(tracepointProbeIdPROBE_NET_DEV_START_XMIT),
		event.NetDevXmit:           uint32(tracepointProbeIdPROBE_NET_DEV_XMIT),
		event.NetifRx:              uint32(tracepointProbeIdPROBE_NETIF_RX),
		event.NapiGroReceiveEntry:  uint32(tracepointProbeIdPROBE_NAPI_GRO_RECEIVE_ENTRY),
		event.KfreeSkb:             uint32(tracepointProbeIdPROBE_KFREE_SKB),
		event.ConsumeSkb:           uint32(tracepointProbeIdPROBE_CONSUME_SKB),
		event.SkbCopyDatagramIovec: uint32(tracepointProbeIdPROBE_SKB_COPY_DATAGRAM_IOVEC),
		event.QdiscEnqueue:         uint32(tracepointProbeIdPROBE_QDISC_ENQUEUE),
		event.QdiscDequeue:         uint32(tracepointProbeIdPROBE_QDISC_DEQUEUE),
		event.ICMPSend:             uint32(tracepointProbeIdPROBE_ICMP_SEND),
		event.FibTableLookup:       uint32(tracepointProbeIdPROBE_FIB_TABLE_LOOKUP),
		event.TCPSendReset:         uint32(tracepointProbeIdPROBE_TCP_SEND_RESET),
		event.TCPReceiveReset:      uint32(tracepointProbeIdPROBE_TCP_RECEIVE_RESET),
		event.TCPRetransmitSkb:     uint32(tracepointProbeIdPROBE_TCP_RETRANSMIT_SKB),
		event.TCPBadCsum:           uint32(tracepointProbeIdPROBE_TCP_BAD_CSUM),
		event.SockRcvqueueFull:     uint32(tracepointProbeIdPROBE_SOCK_RCVQUEUE_FULL),
		event.UDPFailQueueRcvSkb:   uint32(tracepointProbeIdPROBE_UDP_FAIL_QUEUE_RCV_SKB),
		event.NFObserve:            uint32(tracepointProbeIdPROBE_NF_OBSERVE),
		event.Fib6TableLookup:      uint32(tracepointProbeIdPROBE_FIB6TABLE_LOOKUP),
	}
	if got, want := len(ids), len(event.Tracepoints())+1; got != want {
		t.Errorf("%d ids checked, the vocabulary has %d", got, want)
	}
	for p, bpf := range ids {
		if uint32(p) != bpf {
			t.Errorf("%s: vocabulary id %d, BPF id %d", p, uint32(p), bpf)
		}
	}
	if n := uint32(tracepointProbeIdPROBE_MAX); n != uint32(len(ids))+1 {
		t.Errorf("bpf/skbtrail.h has %d probe ids, the vocabulary %d", n-1, len(ids))
	}
}
