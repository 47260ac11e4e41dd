package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/skbtrail/skbtrail/internal/event"
	"github.com/skbtrail/skbtrail/internal/names"
)

// Pcap writes the packets of traced events as pcapng, which Wireshark and
// tshark read. Every packet is raw IP (LINKTYPE_RAW): the bytes from its IP
// header on, as the probe saw them, up to the snapshot length. There is one
// interface block per (network namespace, device) the events name, and each
// packet's comment says which probe saw it, its skb, netns and device, and
// for a drop the reason and place.
type Pcap struct {
	w       *pcapgo.NgWriter
	snaplen uint32
	ifaces  map[ifaceKey]int
	Hooks   bool  // write the netfilter observers' events too
	Packets int   // packets written
	Names   Namer // names namespaces in comments and interfaces; nil: inodes
}

type ifaceKey struct {
	netns uint32
	name  string
}

// NewPcap writes the pcapng section header to w and returns the writer.
// Interface 0 is for events without a device.
func NewPcap(w io.Writer, snaplen uint32, version string) (*Pcap, error) {
	opts := pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
		Application: "skbtrail " + version,
		Comment:     "packets as skbtrail's probes saw them in the kernel, from the IP header on",
	}}
	nw, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                "-",
		Description:         "no device known at the probe",
		LinkType:            layers.LinkTypeRaw,
		SnapLength:          snaplen,
		TimestampResolution: 9,
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("pcapng: %w", err)
	}
	return &Pcap{w: nw, snaplen: snaplen, ifaces: map[ifaceKey]int{}}, nil
}

// Write writes e's packet, if it carries packet bytes.
func (p *Pcap) Write(e event.Event) error {
	if len(e.Data) == 0 || !visible(e, p.Hooks) {
		return nil
	}
	id, err := p.iface(e)
	if err != nil {
		return err
	}
	wire := len(e.Data)
	if n := int(e.Packet.IPLen); e.Packet.Source == event.FromHeaders && n > wire {
		wire = n
	}
	ci := gopacket.CaptureInfo{
		Timestamp:      e.Time,
		CaptureLength:  len(e.Data),
		Length:         wire,
		InterfaceIndex: id,
	}
	comment := Comment(e)
	if w := who(p.Names, e.Netns); w.Known() {
		comment += " (" + describe(w) + ")"
	}
	if err := p.w.WritePacketWithOptions(ci, e.Data, pcapgo.NgPacketOptions{Comments: []string{comment}}); err != nil {
		return fmt.Errorf("pcapng: %w", err)
	}
	p.Packets++
	return p.w.Flush()
}

func (p *Pcap) iface(e event.Event) (int, error) {
	if e.Ifname == "" {
		return 0, nil
	}
	k := ifaceKey{e.Netns, e.Ifname}
	if id, ok := p.ifaces[k]; ok {
		return id, nil
	}
	name, desc := e.Ifname, fmt.Sprintf("%s in netns %d (ifindex %d)", e.Ifname, e.Netns, e.Ifindex)
	if w := who(p.Names, e.Netns); w.Known() {
		// "eth0@pod default/web": tshark and Wireshark show the name.
		name = e.Ifname + "@" + w.Short()
		desc += ": " + describe(w)
	}
	id, err := p.w.AddInterface(pcapgo.NgInterface{
		Name:                name,
		Description:         desc,
		LinkType:            layers.LinkTypeRaw,
		SnapLength:          p.snaplen,
		TimestampResolution: 9,
	})
	if err != nil {
		return 0, fmt.Errorf("pcapng: %w", err)
	}
	p.ifaces[k] = id
	return id, nil
}

// Comment is a packet's pcapng comment: "skbtrail: kfree_skb skb 0x...
// netns 4026532 dev veth-b reason NETFILTER_DROP at nf_hook_slow+0x9e".
func Comment(e event.Event) string {
	s := fmt.Sprintf("skbtrail: %s skb %s netns %d dev %s", e.Name, skbString(e.Skb), e.Netns, orDash(e.Ifname))
	if e.Probe == event.KfreeSkb {
		s += fmt.Sprintf(" reason %s at %s", orDash(e.Reason), orDash(e.Location))
	}
	for _, f := range e.Fields() {
		s += fmt.Sprintf(" %s %v", f.Key, f.Value)
	}
	return s
}

// Flush writes buffered output.
func (p *Pcap) Flush() error { return p.w.Flush() }

// describe says all that is known of a namespace: "pod default/web
// container nginx netns cni-1 pid 1234 pause".
func describe(w names.Who) string {
	parts := []string{w.String()}
	if w.Pod != "" && w.Container != "" {
		parts = append(parts, "container "+w.Container)
	}
	if w.Pod != "" && w.NetnsName != "" {
		parts = append(parts, "netns "+w.NetnsName)
	}
	if w.PID != 0 && !strings.HasPrefix(parts[0], "pid ") {
		parts = append(parts, fmt.Sprintf("pid %d %s", w.PID, w.Comm))
	}
	return strings.Join(parts, " ")
}
