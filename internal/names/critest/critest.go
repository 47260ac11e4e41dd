// Package critest is for tests only: a container runtime's CRI
// RuntimeService (k8s.io/cri-api over gRPC) served on a unix socket, with
// pods whose sandbox and containers are real processes in real network
// namespaces and real cgroups, laid out as containerd or CRI-O lay them
// out. It lets the CRI client of internal/names, and skbtrail's --pod, be
// tested end to end without a Kubernetes node. Nothing in the product
// imports it.
package critest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Layouts a pod's cgroups and sandbox status can take.
const (
	// Containerd: cgroups ".../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope"
	// (systemd driver); the verbose PodSandboxStatus names the network
	// namespace file in its OCI runtime spec, as containerd's does.
	Containerd = "containerd"
	// CRIO: cgroups ".../kubepods-burstable-pod<uid>.slice/crio-<id>.scope";
	// the verbose status says nothing of the namespace, so the client must
	// find it through the containers' cgroups.
	CRIO = "cri-o"
)

// Server is a CRI RuntimeService on a unix socket.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	Socket string
	Name   string // runtime name Version reports

	mu   sync.Mutex
	pods []*Pod
	srv  *grpc.Server
}

// Pod is a pod the server reports.
type Pod struct {
	ID, Name, Namespace, UID string
	Netns                    string // name under /run/netns; "" = the host's (hostNetwork)
	Layout                   string
	PID                      int // the sandbox ("pause") process
	Containers               []Container
	Created                  int64
}

// Container is a container of a pod: a process in the pod's namespace.
type Container struct {
	ID, Name string
	PID      int
	Cgroup   string // its cgroup path, as /proc/PID/cgroup shows it
}

// Start serves the API on a socket in dir until the test ends.
func Start(t testing.TB, dir, name string) *Server {
	t.Helper()
	s := &Server{Socket: filepath.Join(dir, "cri.sock"), Name: name}
	ln, err := net.Listen("unix", s.Socket)
	if err != nil {
		t.Fatalf("critest: listen %s: %v", s.Socket, err)
	}
	s.srv = grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(s.srv, s)
	go s.srv.Serve(ln)
	t.Cleanup(s.srv.Stop)
	return s
}

// Version implements the RuntimeService.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: s.Name, RuntimeVersion: "test", RuntimeApiVersion: "v1"}, nil
}

// ListPodSandbox implements the RuntimeService (filter by id and state).
func (s *Server) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, p := range s.pods {
		if f := req.GetFilter(); f != nil {
			if f.Id != "" && f.Id != p.ID {
				continue
			}
			if f.State != nil && f.State.State != runtimeapi.PodSandboxState_SANDBOX_READY {
				continue
			}
		}
		out = append(out, &runtimeapi.PodSandbox{Id: p.ID, Metadata: p.meta(), State: runtimeapi.PodSandboxState_SANDBOX_READY,
			CreatedAt: p.Created, Labels: p.labels()})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// PodSandboxStatus implements the RuntimeService. Verbose, a containerd
// pod's info holds {"pid": N, "runtimeSpec": {"linux": {"namespaces":
// [{"type": "network", "path": "/run/netns/NAME"}, ...]}}}.
func (s *Server) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	p := s.find(req.PodSandboxId)
	if p == nil {
		return nil, status.Errorf(codes.NotFound, "an error occurred when try to find sandbox %q: not found", req.PodSandboxId)
	}
	netMode := runtimeapi.NamespaceMode_POD
	if p.Netns == "" {
		netMode = runtimeapi.NamespaceMode_NODE
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{
		Id: p.ID, Metadata: p.meta(), State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: p.Created,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
			Network: netMode, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}}},
		Labels: p.labels(),
	}}
	if req.Verbose && p.Layout == Containerd {
		spaces := []map[string]string{{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}}
		if p.Netns != "" {
			spaces = append(spaces, map[string]string{"type": "network", "path": "/run/netns/" + p.Netns})
		}
		info := map[string]any{
			"pid":         p.PID,
			"runtimeSpec": map[string]any{"linux": map[string]any{"namespaces": spaces}},
		}
		b, _ := json.Marshal(info)
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}

// ListContainers implements the RuntimeService (filter by pod sandbox).
func (s *Server) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*runtimeapi.Container
	for _, p := range s.pods {
		if f := req.GetFilter(); f != nil && f.PodSandboxId != "" && f.PodSandboxId != p.ID {
			continue
		}
		for _, c := range p.Containers {
			out = append(out, &runtimeapi.Container{Id: c.ID, PodSandboxId: p.ID,
				Metadata: &runtimeapi.ContainerMetadata{Name: c.Name}, State: runtimeapi.ContainerState_CONTAINER_RUNNING,
				Labels: map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace,
					"io.kubernetes.container.name": c.Name}})
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (s *Server) find(id string) *Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pods {
		if p.ID == id {
			return p
		}
	}
	return nil
}

func (p *Pod) meta() *runtimeapi.PodSandboxMetadata {
	return &runtimeapi.PodSandboxMetadata{Name: p.Name, Namespace: p.Namespace, Uid: p.UID}
}

func (p *Pod) labels() map[string]string {
	return map[string]string{"io.kubernetes.pod.name": p.Name, "io.kubernetes.pod.namespace": p.Namespace, "io.kubernetes.pod.uid": p.UID}
}

// AddPod makes pod namespace/name in the network namespace netns (a name
// under /run/netns, which must exist; "" for a host-network pod): a sandbox process and one process
// per container, each `ip netns exec NETNS sleep`, each moved into a cgroup
// of the layout's shape under a cgroup v2 hierarchy, and reports it. The
// processes and cgroups go when the test ends.
func (s *Server) AddPod(t testing.TB, layout, namespace, name, netns string, containers ...string) *Pod {
	t.Helper()
	p := &Pod{ID: hexID(32), Name: name, Namespace: namespace, UID: uuid(), Netns: netns, Layout: layout,
		Created: time.Now().UnixNano()}
	root := cgroupRoot(t)
	qos, scope := "besteffort", "cri-containerd-"
	if layout == CRIO {
		qos, scope = "burstable", "crio-"
	}
	podSlice := filepath.Join(root, "kubepods.slice", "kubepods-"+qos+".slice",
		"kubepods-"+qos+"-pod"+strings.ReplaceAll(p.UID, "-", "_")+".slice")
	p.PID, _ = spawn(t, netns, filepath.Join(podSlice, scope+p.ID+".scope"))
	for _, c := range containers {
		id := hexID(32)
		pid, cg := spawn(t, netns, filepath.Join(podSlice, scope+id+".scope"))
		p.Containers = append(p.Containers, Container{ID: id, Name: c, PID: pid, Cgroup: cg})
	}
	s.mu.Lock()
	s.pods = append(s.pods, p)
	s.mu.Unlock()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, q := range s.pods {
			if q == p {
				s.pods = append(s.pods[:i], s.pods[i+1:]...)
				break
			}
		}
	})
	return p
}

// spawn starts `sleep` in the network namespace and moves it into the
// cgroup dir (created, with its parents). It returns the pid and the
// cgroup path as /proc/PID/cgroup shows it.
func spawn(t testing.TB, netns, dir string) (int, string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", netns, "sleep", "3600")
	if netns == "" {
		cmd = exec.Command("sleep", "3600")
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("critest: ip netns exec %s sleep: %v", netns, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		removeCgroups(dir)
	})
	// ip netns exec execs sleep in the same process once it is in the
	// namespace: wait for that.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if strings.TrimSpace(string(b)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("critest: ip netns exec %s sleep did not start sleep (comm %q)", netns, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("critest: cgroup: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(cmd.Process.Pid)), 0); err != nil {
		t.Fatalf("critest: move pid %d into cgroup %s: %v", cmd.Process.Pid, dir, err)
	}
	return cmd.Process.Pid, strings.TrimPrefix(dir, mountOf(dir))
}

// removeCgroups removes dir and its parents up to the test's root, once
// empty (the process was killed; its exit may take a moment).
func removeCgroups(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for os.Remove(dir) != nil && time.Now().Before(deadline) {
		if _, err := os.Stat(dir); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for d := filepath.Dir(dir); strings.Contains(d, "skbtrail-critest-"); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
	mountDir string
)

// cgroupRoot is a directory of this test process under the cgroup v2
// hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
func cgroupRoot(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		mountDir, rootErr = cgroup2Mount()
		if rootErr == nil {
			rootDir = filepath.Join(mountDir, fmt.Sprintf("skbtrail-critest-%d-%s", os.Getpid(), hexID(3)))
			rootErr = os.MkdirAll(rootDir, 0o755)
		}
	})
	if rootErr != nil {
		t.Fatalf("critest: a cgroup v2 directory for test pods: %v", rootErr)
	}
	return rootDir
}

func mountOf(string) string { return mountDir }

func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mountpoint ... - cgroup2 cgroup2 rw
		fields := strings.Fields(sc.Text())
		for i, fl := range fields {
			if fl == "-" && i+1 < len(fields) && fields[i+1] == "cgroup2" && strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
				return fields[4], nil
			}
		}
	}
	return "", fmt.Errorf("no cgroup2 file system mounted under /sys/fs/cgroup")
}

func hexID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func uuid() string {
	h := hexID(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
