package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skbtrail/skbtrail/internal/names/critest"
)

// pods are two "pods" on a pair of namespaces, served by a test CRI
// server: web-7c9f in namespace default on A (laid out as containerd
// does), db-0 in namespace prod on B (as CRI-O does).
type pods struct {
	*pair
	srv    *critest.Server
	web    *critest.Pod
	db     *critest.Pod
	socket string
}

func newPods(t *testing.T) *pods {
	t.Helper()
	p := newPair(t)
	srv := critest.Start(t, t.TempDir(), "critest")
	return &pods{pair: p, srv: srv, socket: srv.Socket,
		web: srv.AddPod(t, critest.Containerd, "default", "web-7c9f", p.A, "nginx"),
		db:  srv.AddPod(t, critest.CRIO, "prod", "db-0", p.B, "postgres")}
}

// podEvent is what --json says of an event's namespace.
type podEvent struct {
	Type         string `json:"type"`
	Probe        string `json:"probe"`
	Skb          string `json:"skb"`
	Netns        uint64 `json:"netns"`
	NetnsName    string `json:"netns_name"`
	Pod          string `json:"pod"`
	PodNamespace string `json:"pod_namespace"`
	Container    string `json:"container"`
	Saddr        string `json:"saddr"`
	Daddr        string `json:"daddr"`
	line         string
}

func parsePodEvents(t *testing.T, stdout string) []podEvent {
	t.Helper()
	var out []podEvent
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if line == "" {
			continue
		}
		e := podEvent{line: line}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
		if e.Type == "event" {
			if !strings.Contains(line, `"pod":`) || !strings.Contains(line, `"netns_name":`) {
				t.Errorf("an event without pod and netns_name fields: %s", line)
			}
			out = append(out, e)
		}
	}
	return out
}

// checkPodNames: every event in A names pod default/web-7c9f (container
// nginx), every one in B prod/db-0 (container postgres), and no event is
// in another namespace.
func (p *pods) checkPodNames(t *testing.T, evs []podEvent) (inA, inB int) {
	t.Helper()
	for _, e := range evs {
		switch e.Netns {
		case p.InoA:
			inA++
			if e.Pod != "web-7c9f" || e.PodNamespace != "default" || e.Container != "nginx" || e.NetnsName != p.A {
				t.Errorf("an event in A does not name pod default/web-7c9f, container nginx, netns %s: %s", p.A, e.line)
			}
		case p.InoB:
			inB++
			if e.Pod != "db-0" || e.PodNamespace != "prod" || e.Container != "postgres" || e.NetnsName != p.B {
				t.Errorf("an event in B does not name pod prod/db-0, container postgres, netns %s: %s", p.B, e.line)
			}
		case 0:
		default:
			t.Errorf("an event in netns %d, neither A's nor B's: %s", e.Netns, e.line)
		}
	}
	return inA, inB
}

// A ping from pod web-7c9f to pod db-0, traced with --pod: the story, its
// JSON and its capture name both pods.
func TestPodPingStory(t *testing.T) {
	needBinary(t)
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Fatal("tshark is needed to read the capture (Debian package tshark; .ci/run installs it)")
	}
	t.Parallel()
	p := newPods(t)
	p.warm(t)
	other := newPair(t) // traffic of no pod, which --pod must not select
	other.warm(t)
	file := filepath.Join(t.TempDir(), "pods.pcapng")
	common := []string{"-p", "icmp", "--pod", "default/web-7c9f", "--cri-endpoint", p.socket, "--duration", durArg(4 * time.Second)}
	trs := runAll(t,
		append([]string{"--detail"}, common...),
		append([]string{"--json", "--pcap", file}, common...))
	for i := 0; i < 2; i++ {
		mustPing(t, p.A, p.B4)
		mustPing(t, other.A, other.B4)
	}
	trs[0].inWindow(4 * time.Second)
	text, stderr := trs[0].waitOK(exitWithin)
	stdout, _ := trs[1].waitOK(exitWithin)

	if !strings.Contains(stderr, "netns pod default/web-7c9f ("+strconv.FormatUint(p.InoA, 10)+")") {
		t.Errorf("the filter line does not name the pod:\n%s", stderr)
	}
	if strings.Contains(stderr, "no container runtime") {
		t.Errorf("the runtime at --cri-endpoint was not used:\n%s", stderr)
	}
	// Text: the echo request's story goes from one pod to the other, and
	// --detail names the pod on each line.
	if !strings.Contains(text, "from pod default/web-7c9f to pod prod/db-0 ***") {
		t.Errorf("no story from pod default/web-7c9f to pod prod/db-0:\n%s", tail(text, 60, 6000))
	}
	for _, want := range []string{"pod default/web-7c9f     veth-a", "pod prod/db-0            veth-b"} {
		if !strings.Contains(text, want) {
			t.Errorf("--detail has no %q:\n%s", want, tail(text, 60, 6000))
		}
	}
	if strings.Contains(text, other.A4) || strings.Contains(text, other.B4) {
		t.Errorf("--pod let through traffic of no pod (%s > %s):\n%s", other.A4, other.B4, tail(text, 60, 6000))
	}

	// JSON: names on every event; echo requests seen in both pods.
	evs := parsePodEvents(t, stdout)
	inA, inB := p.checkPodNames(t, evs)
	if inA == 0 || inB == 0 {
		t.Errorf("want events in both pods, got %d in A and %d in B:\n%s", inA, inB, tail(stdout, 40, 6000))
	}
	for _, e := range evs {
		if e.Saddr != "" && !(sameAddr(e.Saddr, p.A4) || sameAddr(e.Saddr, p.B4) || unspecified(e.Saddr)) {
			t.Errorf("--pod let through another flow: %s", e.line)
		}
	}

	// pcapng: interfaces named after the pods, comments naming them.
	out, err := tsharkOut(tshark, "-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name", "-e", "frame.comment")
	if err != nil {
		t.Fatalf("tshark -r %s: %v\n%s", file, err, out)
	}
	for _, want := range []string{
		"veth-a@pod default/web-7c9f|", "(pod default/web-7c9f container nginx netns " + p.A,
		"veth-b@pod prod/db-0|", "(pod prod/db-0 container postgres netns " + p.B,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the capture has no %q:\n%s", want, tail(out, 30, 4000))
		}
	}
}

// A datagram from pod web-7c9f to a closed port of pod db-0, diagnosed
// with --pod: the story and the findings name both pods, and the advice
// says how to run its commands in db-0.
func TestPodDiag(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPods(t)
	p.warm(t)
	port := 20000 + rand.IntN(20000)
	args := []string{"--diag", "-p", "udp", "-D", strconv.Itoa(port), "--pod", "web-7c9f", "--cri-endpoint", p.socket,
		"--duration", durArg(4 * time.Second)}
	trs := runAll(t, args, append([]string{"--json"}, args...))
	floodUDP(t, p.A, p.B4, port, 1)
	trs[0].inWindow(4 * time.Second)
	text, _ := trs[0].waitOK(exitWithin)
	stdout, _ := trs[1].waitOK(exitWithin)

	ino := strconv.FormatUint(p.InoB, 10)
	for _, want := range []string{
		"from pod default/web-7c9f to pod prod/db-0 ***",
		"ERROR (life/kfree_skb in pod prod/db-0) packet dropped",
		"in netns " + ino + " (pod prod/db-0)",
		"kubectl exec -n prod db-0 -- CMD",
		"ip netns exec " + p.B + " CMD",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the diagnosis has no %q:\n%s", want, tail(text, 60, 6000))
		}
	}
	var found bool
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.Contains(line, `"type":"analysis"`) {
			continue
		}
		var a struct {
			Findings []struct {
				Level, Message, Advice, Pod string
				PodNamespace                string `json:"pod_namespace"`
				Reason                      string
			}
		}
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			t.Fatalf("bad analysis record: %v\n%s", err, line)
		}
		for _, f := range a.Findings {
			if f.Reason != "NO_SOCKET" {
				continue
			}
			found = true
			if f.Pod != "db-0" || f.PodNamespace != "prod" || !strings.Contains(f.Advice, "(pod prod/db-0)") ||
				!strings.Contains(f.Advice, "kubectl exec -n prod db-0 --") {
				t.Errorf("the NO_SOCKET finding does not name pod prod/db-0 and how to get there: %+v", f)
			}
		}
	}
	if !found {
		t.Errorf("no NO_SOCKET finding:\n%s", tail(stdout, 40, 6000))
	}
	evs := parsePodEvents(t, stdout)
	if inA, inB := p.checkPodNames(t, evs); inA == 0 || inB == 0 {
		t.Errorf("want events in both pods, got %d in A and %d in B", inA, inB)
	}
}

// --container, --pid and --netns-current select the namespace of that
// container, process or of skbtrail itself, and only its traffic.
func TestContainerAndPidSelect(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPods(t)
	p.warm(t)
	other := newPair(t)
	other.warm(t)
	for _, sel := range []struct {
		name string
		args []string
		ino  uint64
		in   string // run skbtrail in this namespace
	}{
		{"container name", []string{"--container", "postgres"}, p.InoB, ""},
		{"container id", []string{"--container", p.web.Containers[0].ID[:12]}, p.InoA, ""},
		{"pid", []string{"--pid", strconv.Itoa(p.db.Containers[0].PID)}, p.InoB, ""},
		{"netns-current", []string{"--netns-current"}, p.InoA, p.A},
	} {
		t.Run(sel.name, func(t *testing.T) {
			args := append([]string{"--json", "-p", "icmp", "--cri-endpoint", p.socket, "--duration", durArg(3 * time.Second)}, sel.args...)
			var tr *proc
			if sel.in != "" {
				tr = runIn(t, sel.in, args...)
			} else {
				tr = run(t, args...)
			}
			mustPing(t, p.A, p.B4)
			mustPing(t, other.A, other.B4)
			tr.inWindow(3 * time.Second)
			stdout, stderr := tr.waitOK(exitWithin)
			evs := parsePodEvents(t, stdout)
			p.checkPodNames(t, evs)
			bySkb := map[string]bool{}
			for _, e := range evs {
				if e.Netns == sel.ino {
					bySkb[e.Skb] = true
				}
			}
			if len(bySkb) == 0 {
				t.Fatalf("%v: no event in the chosen namespace %d:\n%s", sel.args, sel.ino, describeOutput(stdout, stderr))
			}
			for _, e := range evs {
				if e.Skb != "-" && !bySkb[e.Skb] {
					t.Errorf("%v: a packet never in the chosen namespace %d: %s", sel.args, sel.ino, e.line)
				}
			}
		})
	}
}

// Names that match nothing, and two ways of choosing the namespace: one
// line and exit status 2.
func TestPodBadNames(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPods(t)
	cri := []string{"--cri-endpoint", p.socket}
	for _, c := range []struct {
		args    []string
		mention string
	}{
		{append([]string{"--pod", "default/nope"}, cri...), `no running pod of that name on this node (pods: default/web-7c9f, prod/db-0)`},
		{append([]string{"--pod", "prod/web-7c9f"}, cri...), `no running pod`},
		{append([]string{"--container", "nope"}, cri...), `no container with that id or name`},
		{[]string{"--pid", "999999999"}, `--pid 999999999: no such process`},
		{[]string{"--pod", "web-7c9f", "--cri-endpoint", "none"}, `no container runtime to ask`},
		{[]string{"--pod", "web-7c9f", "--cri-endpoint", p.socket + ".missing"}, `--cri-endpoint`},
		{append([]string{"--pod", "web-7c9f", "--netns", p.A}, cri...), `--netns and --pod both choose the network namespace`},
		{append([]string{"drops", "--pod", "default/nope"}, cri...), `no running pod`},
	} {
		stdout, stderr, code := runOnce(t, c.args...)
		cmd := "skbtrail " + strings.Join(c.args, " ")
		if code != 2 {
			t.Errorf("%s: exit status %d, want 2\n%s", cmd, code, describeOutput(stdout, stderr))
		}
		if lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n"); len(lines) != 1 || !strings.Contains(stderr, c.mention) {
			t.Errorf("%s: want one line saying %q, got:\n%s", cmd, c.mention, stderr)
		}
	}
}

// skbtrail drops names pods in its JSON records and, with --metrics-labels
// pod, in its metrics.
func TestPodDrops(t *testing.T) {
	needBinary(t)
	t.Parallel()
	p := newPods(t)
	p.warm(t)
	port := 20000 + rand.IntN(20000)
	const metricsAddr = "127.0.0.1:9464" // B's own loopback
	tr := runIn(t, p.B, "drops", "--json", "--interval", "300ms", "--pod", "prod/db-0", "--cri-endpoint", p.socket,
		"-p", "udp", "-D", strconv.Itoa(port), "--metrics", metricsAddr, "--metrics-labels", "pod")
	floodUDP(t, p.A, p.B4, port, 20)
	waitFor(t, 10*time.Second, "a drop record naming pod prod/db-0", func() (bool, string) {
		out := tr.stdout.String()
		return strings.Contains(out, `"pod":"db-0","pod_namespace":"prod","container":"postgres"`), tail(out, 10, 2000)
	})
	want := fmt.Sprintf(`netns="%d",pod="db-0",pod_namespace="prod",reason="NO_SOCKET"}`, p.InoB)
	waitFor(t, 10*time.Second, "skbtrail_drops_total with the pod's labels", func() (bool, string) {
		body, err := scrapeIn(t, p.B, "http://"+metricsAddr+"/metrics")
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(body, want), body
	})
}
