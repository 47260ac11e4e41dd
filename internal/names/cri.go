package names

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Sockets are the CRI endpoints looked for when none is given: containerd's
// and CRI-O's.
var Sockets = []string{"/run/containerd/containerd.sock", "/run/crio/crio.sock"}

// Pod is a pod sandbox as the container runtime knows it.
type Pod struct {
	ID        string // sandbox id
	Name      string
	Namespace string
	UID       string
	Ready     bool
	// NetnsPath is the sandbox's network namespace file, as the runtime
	// reports it (its OCI spec's network namespace, or its pid's
	// /proc/PID/ns/net); "" when it does not say.
	NetnsPath string
	PID       int // the sandbox's process, when the runtime says; 0 = unknown
	// HostNetwork: the pod uses the node's network namespace
	// (hostNetwork: true; the sandbox's network namespace mode is NODE).
	HostNetwork bool
	Containers  []PodContainer
}

// PodContainer is a container of a pod.
type PodContainer struct {
	ID    string
	Name  string
	State string // CONTAINER_RUNNING, ...
}

// CRI is a client of a container runtime's CRI RuntimeService (containerd,
// CRI-O) on a unix socket.
type CRI struct {
	Endpoint string // the socket path
	Runtime  string // "containerd 2.0.0", from Version
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
}

// criTimeout bounds the calls of one look at the runtime.
const criTimeout = 2 * time.Second

// statusCalls bounds the PodSandboxStatus calls in flight.
const statusCalls = 8

// DialCRI connects to the CRI endpoint ("unix:///run/containerd/containerd.sock"
// or a plain path) and asks the runtime its version, so that a socket
// nobody answers on is an error now, not at the first lookup.
func DialCRI(ctx context.Context, endpoint string) (*CRI, error) {
	path := strings.TrimPrefix(endpoint, "unix://")
	if path == "" || strings.Contains(path, "://") {
		return nil, fmt.Errorf("CRI endpoint %q: want a unix socket path such as /run/containerd/containerd.sock", endpoint)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", path, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		return nil, fmt.Errorf("CRI endpoint %s: not a unix socket", path)
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI endpoint %s: %w", path, err)
	}
	c := &CRI{Endpoint: path, conn: conn, rt: runtimeapi.NewRuntimeServiceClient(conn)}
	cctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	v, err := c.rt.Version(cctx, &runtimeapi.VersionRequest{Version: "v1"})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("CRI endpoint %s: the runtime does not answer Version: %w", path, err)
	}
	c.Runtime = strings.TrimSpace(v.RuntimeName + " " + v.RuntimeVersion)
	return c, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Pods lists the pod sandboxes with their containers: ListPodSandbox,
// PodSandboxStatus (verbose, for the network namespace) of each ready one,
// and ListContainers.
func (c *CRI) Pods(ctx context.Context) ([]Pod, error) {
	cctx, cancel := context.WithTimeout(ctx, criTimeout)
	defer cancel()
	sb, err := c.rt.ListPodSandbox(cctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI ListPodSandbox on %s: %w", c.Endpoint, err)
	}
	ct, err := c.rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, fmt.Errorf("CRI ListContainers on %s: %w", c.Endpoint, err)
	}
	byPod := map[string][]PodContainer{}
	for _, k := range ct.Containers {
		name := ""
		if k.Metadata != nil {
			name = k.Metadata.Name
		}
		byPod[k.PodSandboxId] = append(byPod[k.PodSandboxId], PodContainer{ID: k.Id, Name: name, State: k.State.String()})
	}
	pods := make([]Pod, len(sb.Items))
	for i, s := range sb.Items {
		p := Pod{ID: s.Id, Ready: s.State == runtimeapi.PodSandboxState_SANDBOX_READY, Containers: byPod[s.Id]}
		if m := s.Metadata; m != nil {
			p.Name, p.Namespace, p.UID = m.Name, m.Namespace, m.Uid
		}
		pods[i] = p
	}
	// The status of each ready sandbox, statusCalls at a time. A sandbox
	// gone meanwhile keeps what the list said.
	var wg sync.WaitGroup
	sem := make(chan struct{}, statusCalls)
	for i := range pods {
		if !pods[i].Ready {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(p *Pod) {
			defer func() { <-sem; wg.Done() }()
			st, err := c.rt.PodSandboxStatus(cctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.ID, Verbose: true})
			if err == nil {
				p.NetnsPath, p.PID = sandboxNetns(st.Info)
				p.HostNetwork = st.GetStatus().GetLinux().GetNamespaces().GetOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
			}
		}(&pods[i])
	}
	wg.Wait()
	return pods, nil
}

// sandboxNetns reads the verbose PodSandboxStatus info that containerd and
// CRI-O return: a JSON "info" object with the sandbox's "pid" and its OCI
// "runtimeSpec", whose linux.namespaces entry of type "network" has the
// path of the namespace file.
func sandboxNetns(info map[string]string) (path string, pid int) {
	raw, ok := info["info"]
	if !ok {
		return "", 0
	}
	var v struct {
		Pid         int `json:"pid"`
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return "", 0
	}
	for _, ns := range v.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			return ns.Path, v.Pid
		}
	}
	if v.Pid > 0 {
		return "/proc/" + strconv.Itoa(v.Pid) + "/ns/net", v.Pid
	}
	return "", 0
}
