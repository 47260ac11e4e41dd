package decode

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/skbtrail/skbtrail/internal/event"
)

// FuzzDecodePacketData feeds Decode records of any length: plain events, events with
// packet bytes (--pcap), and garbage. It must never panic, must refuse a
// record that claims more packet bytes than it has, and must return the
// packet bytes exactly when the record is well-formed.
func FuzzDecodePacketData(f *testing.F) {
	plain := make([]byte, event.RecordSize)
	f.Add(plain)
	withData := append(append([]byte(nil), plain...), make([]byte, event.DataHeaderSize+16)...)
	binary.NativeEndian.PutUint32(withData[event.RecordSize:], 4)
	copy(withData[event.RecordSize+event.DataHeaderSize:], []byte{0x45, 0, 0, 20})
	f.Add(withData)
	f.Add(withData[:event.RecordSize+3])
	f.Add([]byte{1, 2, 3})
	var d Decoder
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := d.Decode(b)
		if err != nil {
			return
		}
		if len(b) < event.RecordSize {
			t.Fatalf("decoded a %d-byte record", len(b))
		}
		tail := b[event.RecordSize:]
		if len(tail) == 0 {
			if e.Data != nil {
				t.Fatal("data from a record without any")
			}
			return
		}
		n := int(binary.NativeEndian.Uint32(tail))
		if n != len(e.Data) || !bytes.Equal(e.Data, tail[event.DataHeaderSize:event.DataHeaderSize+n]) {
			t.Fatalf("data %x, record says %d bytes of %x", e.Data, n, tail)
		}
	})
}
