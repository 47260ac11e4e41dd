package e2e

import (
	"debug/elf"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The binary ships as one static file, alone in a container image
// (Dockerfile: distroless/static, no libc): these tests check that it is
// static, and that it works in a root holding nothing but itself, with an
// empty environment, as it does in that image.

// needStatic fails the test when the binary under test was not built as it
// ships (without cgo).
func needStatic(t *testing.T) {
	t.Helper()
	needBinary(t)
	if staticErr != nil {
		t.Fatalf("skbtrail does not build without cgo, so it cannot be the static binary that ships (container image, arm64): remove cgo from the product:\n%v", staticErr)
	}
}

func TestStaticBinary(t *testing.T) {
	needStatic(t)
	f, err := elf.Open(binPath)
	if err != nil {
		t.Fatalf("reading %s as ELF: %v", binPath, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 256))
			t.Errorf("%s has a program interpreter (%s): it is dynamically linked and needs a libc the container image does not have", binPath, strings.TrimRight(string(interp), "\x00"))
		case elf.PT_DYNAMIC:
			t.Errorf("%s has a dynamic section (PT_DYNAMIC): it is not a static binary", binPath)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Errorf("%s: reading its needed libraries: %v", binPath, err)
	} else if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v: it is not a static binary", binPath, libs)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH]
	if want != elf.EM_NONE && f.Machine != want {
		t.Errorf("%s is for %v, want %v (GOARCH %s)", binPath, f.Machine, want, runtime.GOARCH)
	}
}

// TestDockerfileBuild checks that the Dockerfile builds the binary the way
// these tests do (shippedBuild, without cgo) into a base image without libc.
func TestDockerfileBuild(t *testing.T) {
	df, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatalf("reading the Dockerfile: %v", err)
	}
	var builds, froms []string
	for _, line := range strings.Split(string(df), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && strings.HasPrefix(f[0], "#"):
		case len(f) > 0 && f[0] == "FROM":
			froms = append(froms, line)
		case strings.Contains(line, "go build"):
			builds = append(builds, line)
		}
	}
	wantBuild := "go " + strings.Join(shippedBuild, " ") + " -o "
	if len(builds) != 1 || !strings.Contains(builds[0], "CGO_ENABLED=0 ") || !strings.Contains(builds[0], wantBuild) || !strings.HasSuffix(strings.TrimSpace(builds[0]), " ./cmd/skbtrail") {
		t.Errorf("the Dockerfile should build skbtrail in one line, with CGO_ENABLED=0 and %q...%q, as the tests do; its go build lines: %q", wantBuild, " ./cmd/skbtrail", builds)
	}
	if len(froms) == 0 {
		t.Fatalf("the Dockerfile has no FROM line")
	}
	last := strings.Fields(froms[len(froms)-1])
	if base := last[len(last)-1]; base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("the Dockerfile's image is based on %s: want scratch or gcr.io/distroless/static*, where only a static binary runs (what these tests check)", base)
	}
}

// minimalRoot makes a directory holding only the binary under test (as
// /skbtrail) and the empty mount points /proc and /sys.
func minimalRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"proc", "sys"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(binPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(root, "skbtrail"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return root
}

// inMinimalRoot returns a command that runs /skbtrail with args chrooted
// into root, with an empty environment, as the container runtime runs it:
// in new mount and PID namespaces with a fresh proc and sysfs mounted (sysfs
// has /sys/kernel/btf), and nothing else. With ns, in that network
// namespace (ip netns exec). The mounts disappear with the namespace.
func inMinimalRoot(t *testing.T, root, ns string, args ...string) *exec.Cmd {
	t.Helper()
	const script = `set -e
r=$1
shift
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
chroot=$(command -v chroot)
exec env -i "$chroot" "$r" /skbtrail "$@"`
	argv := []string{"unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--", "sh", "-c", script, "sh", root}
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	for _, tool := range []string{"unshare", "chroot", "mount", "env", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to run skbtrail in a minimal root: %v (util-linux, coreutils, mount)", tool, err)
		}
	}
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd
}

// TestMinimalRoot runs the binary alone in a root, with an empty
// environment: `skbtrail check` must see what it sees on the host, a trace
// with a filter expression must show a ping's story, and `skbtrail drops
// --metrics` (the DaemonSet's command) must count drops and serve them.
func TestMinimalRoot(t *testing.T) {
	needStatic(t)
	t.Parallel()
	root := minimalRoot(t)

	t.Run("check", func(t *testing.T) {
		host, hostErr, code := runOnce(t, "check")
		if code != 0 {
			t.Fatalf("skbtrail check on the host: exit status %d:\n%s", code, describeOutput(host, hostErr))
		}
		p := startCmd(t, []string{"check (minimal root)"}, inMinimalRoot(t, root, "", "check"))
		stdout, stderr := p.waitOK(30 * time.Second)
		got := map[string]bool{}
		for _, l := range strings.Split(stdout, "\n") {
			got[l] = true
		}
		for _, l := range strings.Split(host, "\n") {
			// The lockdown mode is read from securityfs, which a
			// container does not have; it only explains failures.
			if strings.HasPrefix(l, "lockdown") {
				continue
			}
			if !got[l] {
				t.Errorf("skbtrail check in the minimal root does not say, as on the host:\n  %s", l)
			}
		}
		if t.Failed() {
			t.Logf("in the minimal root:\n%s\non the host:\n%s", describeOutput(stdout, stderr), host)
		}
	})

	t.Run("trace", func(t *testing.T) {
		t.Parallel()
		p := newPair(t)
		p.warm(t)
		// With a filter expression: compiled by skbtrail itself, no libpcap.
		args := []string{"--json", "-c", "1", "-p", "icmp", "-s", p.A4, "-d", p.B4, "--duration", durArg(20 * time.Second), "icmp[icmptype] == icmp-echo and dst host " + p.B4}
		tr := startCmd(t, args, inMinimalRoot(t, root, "", args...))
		tr.waitBegin()
		mustPing(t, p.A, p.B4)
		stdout, stderr := tr.waitOK(exitWithin)
		evs := parseJSON(t, stdout, stderr)
		checkOnlyFlow(t, evs, p.A4, p.B4, strings.Join(args, " "))
		checkPingStory(t, p, evs, tr.report())
	})

	t.Run("drops", func(t *testing.T) {
		t.Parallel()
		const n = 500
		p := newPair(t)
		p.warm(t)
		port := 20000 + rand.IntN(20000)
		// In B, as the DaemonSet runs it in the node's namespace; the
		// namespace is given by inode: the root has no /run/netns.
		const metricsAddr = "127.0.0.1:9464" // B's own loopback
		args := []string{"drops", "--json", "--interval", "300ms", "--netns", fmt.Sprint(p.InoB), "-p", "udp", "-D", fmt.Sprint(port), "--metrics", metricsAddr}
		tr := startCmd(t, args, inMinimalRoot(t, root, p.B, args...))
		tr.waitBegin()
		floodUDP(t, p.A, p.B4, port, n)
		waitFor(t, 10*time.Second, "drops --json totals to reach the packets sent", func() (bool, string) {
			_, all := dropSums(parseDrops(t, tr.stdout.String(), tr.stderr.String()))
			return all >= n, fmt.Sprintf("%d of %d counted", all, n)
		})
		labels := map[string]string{"reason": "NO_SOCKET", "netns": fmt.Sprint(p.InoB), "device": p.IfB}
		waitFor(t, 10*time.Second, "skbtrail_drops_total to count the packets sent", func() (bool, string) {
			body, err := scrapeIn(t, p.B, "http://"+metricsAddr+"/metrics")
			if err != nil {
				return false, err.Error()
			}
			v, ok := metricValue(body, "skbtrail_drops_total", labels)
			return ok && v == fmt.Sprint(n), fmt.Sprintf("skbtrail_drops_total%v = %q (found %v), want %d:\n%s", labels, v, ok, n, body)
		})
	})
}
