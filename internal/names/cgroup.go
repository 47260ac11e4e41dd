package names

import (
	"bufio"
	"io"
	"strings"
)

// Container is what a cgroup path says about the container a process
// runs in: its id, the runtime that made the cgroup, and the pod UID when
// the path is under a Kubernetes kubepods hierarchy.
type Container struct {
	ID      string // 64 hex digits; "" = not in a container
	Runtime string // containerd, cri-o, docker, podman; "" = unknown (kubepods cgroupfs)
	PodUID  string // from ".../pod<uid>/" or "kubepods-...-pod<uid>.slice" (dashes restored)
}

// scopePrefixes are the systemd scope names the runtimes give a
// container's cgroup: "<prefix><id>.scope".
var scopePrefixes = []struct{ prefix, runtime string }{
	{"cri-containerd-", "containerd"},
	{"crio-", "cri-o"},
	{"docker-", "docker"},
	{"libpod-", "podman"},
}

// FromCgroup reads a cgroup path ("/kubepods.slice/.../cri-containerd-ID.scope")
// as the container runtimes lay it out:
//
//	systemd driver:  .../kubepods-besteffort-pod<uid>.slice/cri-containerd-<id>.scope
//	                 .../kubepods-pod<uid>.slice/crio-<id>.scope
//	                 /system.slice/docker-<id>.scope
//	containerd v1:   /system.slice/containerd.service/kubepods-...-pod<uid>.slice:cri-containerd:<id>
//	cgroupfs driver: /kubepods/besteffort/pod<uid>/<id>
//	docker cgroupfs: /docker/<id>
//
// The innermost component that names a container wins. CRI-O's conmon
// scopes ("crio-conmon-<id>.scope") are the monitor, not the container.
func FromCgroup(path string) Container {
	var c Container
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(parts) - 1; i >= 0 && c.ID == ""; i-- {
		c.ID, c.Runtime = containerPart(parts[i], i > 0 && (parts[i-1] == "docker"))
	}
	for _, p := range parts {
		if uid := podUID(p); uid != "" {
			c.PodUID = uid
		}
	}
	if c.ID == "" {
		c.Runtime = ""
	}
	return c
}

func containerPart(p string, underDocker bool) (id, runtime string) {
	// containerd's systemd driver on cgroup v1: "slice:cri-containerd:id".
	if f := strings.Split(p, ":"); len(f) == 3 && isID(f[2]) {
		switch f[1] {
		case "cri-containerd":
			return f[2], "containerd"
		case "crio":
			return f[2], "cri-o"
		case "docker":
			return f[2], "docker"
		}
		return f[2], ""
	}
	if s, ok := strings.CutSuffix(p, ".scope"); ok {
		for _, sp := range scopePrefixes {
			if rest, ok := strings.CutPrefix(s, sp.prefix); ok && isID(rest) {
				return rest, sp.runtime
			}
		}
		return "", ""
	}
	if isID(p) {
		if underDocker {
			return p, "docker"
		}
		return p, ""
	}
	return "", ""
}

// podUID reads "pod<uid>" (cgroupfs) and "kubepods[-qos]-pod<uid>.slice"
// (systemd, with the UID's dashes written as underscores).
func podUID(p string) string {
	p, _, _ = strings.Cut(p, ":")
	if s, ok := strings.CutSuffix(p, ".slice"); ok && strings.HasPrefix(s, "kubepods") {
		if i := strings.LastIndex(s, "-pod"); i >= 0 {
			return strings.ReplaceAll(s[i+len("-pod"):], "_", "-")
		}
		return ""
	}
	if rest, ok := strings.CutPrefix(p, "pod"); ok && len(rest) >= 32 && isUUID(rest) {
		return rest
	}
	return ""
}

func isID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isUUID(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) && s[i] != '-' && s[i] != '_' {
			return false
		}
	}
	return true
}

func isHex(b byte) bool { return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' }

// parseProcCgroup reads /proc/PID/cgroup ("hierarchy:controllers:path"
// lines) and returns the path that names a container, else the cgroup v2
// path ("0::"), else the first path.
func parseProcCgroup(r io.Reader) (path string, c Container) {
	var first, unified string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		if first == "" {
			first = f[2]
		}
		if f[0] == "0" && f[1] == "" {
			unified = f[2]
		}
		if cc := FromCgroup(f[2]); cc.ID != "" {
			return f[2], cc
		}
	}
	if unified != "" {
		return unified, FromCgroup(unified)
	}
	return first, FromCgroup(first)
}
