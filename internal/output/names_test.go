package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/skbtrail/skbtrail/internal/diag"
	"github.com/skbtrail/skbtrail/internal/drops"
	"github.com/skbtrail/skbtrail/internal/names"
)

// namerOf names the sample's two namespaces: A as a pod, B by its
// /run/netns name; any other inode is unknown.
type namerOf map[uint32]names.Who

func (n namerOf) Who(ino uint32) names.Who {
	if w, ok := n[ino]; ok {
		w.Inode = ino
		return w
	}
	return names.Who{Inode: ino}
}

var sampleNames = namerOf{
	4026532281: {Pod: "web-7c9f", PodNamespace: "default", Container: "nginx", NetnsName: "cni-1", PID: 1234, Comm: "pause"},
	4026532282: {NetnsName: "blue", PID: 99, Comm: "sleep"},
}

func TestTextNames(t *testing.T) {
	var buf bytes.Buffer
	r := NewText(&buf, true)
	r.Names = sampleNames
	for _, s := range sample() {
		if err := r.Story(s); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for _, want := range []string{
		"*** skb 0xffff888100aa0000 from pod default/web-7c9f to netns blue ***",
		"*** skb 0xffff888100bb0000 in netns blue ***",
		"pod default/web-7c9f     veth-a",
		"netns blue               veth-b",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "4026532281") {
		t.Errorf("an inode is shown though its namespace has a name:\n%s", out)
	}
}

func TestJSONNames(t *testing.T) {
	var buf bytes.Buffer
	r := NewJSON(&buf)
	r.Names = sampleNames
	if err := r.Story(sample()[0]); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, last map[string]any
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if first["pod"] != "web-7c9f" || first["pod_namespace"] != "default" || first["container"] != "nginx" || first["netns_name"] != "cni-1" {
		t.Errorf("first event: %s", lines[0])
	}
	if last["pod"] != "" || last["netns_name"] != "blue" {
		t.Errorf("last event: %s", lines[len(lines)-1])
	}
	if !strings.Contains(lines[0], `"netns":4026532281,"netns_name":"cni-1","pod":"web-7c9f"`) {
		t.Errorf("names do not follow netns: %s", lines[0])
	}
}

func TestPcapNames(t *testing.T) {
	var buf bytes.Buffer
	p, err := NewPcap(&buf, 256, "test")
	if err != nil {
		t.Fatal(err)
	}
	p.Names = sampleNames
	e := sample()[0].Events[0]
	e.Data = make([]byte, 28)
	e.Data[0] = 0x45
	if err := p.Write(e); err != nil {
		t.Fatal(err)
	}
	raw := append([]byte(nil), buf.Bytes()...)
	r, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	_, ci, err := r.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	iface, err := r.Interface(ci.InterfaceIndex)
	if err != nil {
		t.Fatal(err)
	}
	if iface.Name != "veth-a@pod default/web-7c9f" {
		t.Errorf("interface name %q", iface.Name)
	}
	if !strings.Contains(iface.Description, "pod default/web-7c9f container nginx netns cni-1 pid 1234 pause") {
		t.Errorf("interface description %q", iface.Description)
	}
	// The reader does not return a packet's options: the comment is
	// looked for in the file's bytes, where pcapng keeps it as is.
	want := Comment(e) + " (pod default/web-7c9f container nginx netns cni-1 pid 1234 pause)"
	if !bytes.Contains(raw, []byte(want)) {
		t.Errorf("no comment %q in the capture", want)
	}
}

func TestDropsNames(t *testing.T) {
	rows := []drops.Row{
		{Reason: "NO_SOCKET", Location: "__udp4_lib_rcv+0x4bc", Netns: 4026532281, Device: "eth0", Count: 7, Total: 7},
		{Reason: "NETFILTER_DROP", Location: "nf_hook_slow+0x9e", Netns: 4026532999, Device: "veth-b", Count: 3, Total: 3},
	}
	var buf bytes.Buffer
	tx := NewDropsText(&buf, 0, 0, false)
	tx.Names = sampleNames
	if err := tx.Summary(rows, 0, 0); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "pod default/web-7c9f  eth0") || !strings.Contains(buf.String(), "4026532999") {
		t.Errorf("drops table:\n%s", buf.String())
	}
	buf.Reset()
	js := NewDropsJSON(&buf)
	js.Names = sampleNames
	if err := js.Interval(drops.Interval{Rows: rows}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\n")
	if !strings.Contains(lines[0], `"netns":4026532281,"netns_name":"cni-1","pod":"web-7c9f","pod_namespace":"default","container":"nginx"`) {
		t.Errorf("drop record: %s", lines[0])
	}
	if strings.Contains(lines[1], `"pod"`) {
		t.Errorf("an unknown namespace has names: %s", lines[1])
	}
}

func TestAnalysisNames(t *testing.T) {
	var buf bytes.Buffer
	r := NewText(&buf, false)
	r.Names = sampleNames
	s := sample()[1]
	a := &diag.Analysis{Story: s, Levels: make([]diag.Level, len(s.Events)), Findings: []diag.Finding{
		{Level: diag.Error, Probe: "kfree_skb", Group: "life", Netns: 4026532281, Message: "packet dropped"},
		{Level: diag.Info, Netns: 4026532999, Message: "counters"},
	}}
	if err := r.Analysis(a); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[1] ERROR (life/kfree_skb in pod default/web-7c9f) packet dropped", "[2] INFO  (packet) counters"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in:\n%s", want, buf.String())
		}
	}
}
