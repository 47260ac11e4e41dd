package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	// binPath is the skbtrail binary under test.
	binPath string
	// rootSkip, if set, says why no test can run (not root).
	rootSkip string
	// binSkip, if set, says why tests that run skbtrail cannot run.
	binSkip string
	// staticErr, if set, says why binPath is not the static binary that
	// ships: skbtrail did not build without cgo. The tests in static_test.go
	// fail with it; the others run a binary built with cgo, so that one
	// defect fails the tests about it, not every test.
	staticErr error
)

// shippedBuild is how skbtrail is built for release, with CGO_ENABLED=0 so
// that the binary is static: here, in test/vm/matrix and in the Dockerfile
// (TestStaticBinary checks that the Dockerfile agrees).
var shippedBuild = []string{"build", "-trimpath"}

func TestMain(m *testing.M) {
	ci := os.Getenv("CI") == "true"
	tmp, err := os.MkdirTemp("", "skbtrail-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}

	if os.Geteuid() != 0 {
		rootSkip = "the e2e tests need root (they create network namespaces and load BPF programs)"
		binSkip = rootSkip
	} else {
		sweepLeftovers()
		binPath, err = findBinary(tmp)
		if err != nil {
			binSkip = err.Error()
		}
	}
	if binSkip != "" {
		if ci {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: CI=true, and the end-to-end tests cannot run: %s\n", binSkip)
			os.RemoveAll(tmp)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "e2e: skipping tests that run skbtrail: %s\n", binSkip)
	}

	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// findBinary returns $SKBTRAIL_BIN, or builds ./cmd/skbtrail into dir as it
// ships (shippedBuild, without cgo); if that fails, it sets staticErr and
// builds it with cgo.
func findBinary(dir string) (string, error) {
	if p := os.Getenv("SKBTRAIL_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if fi, err := os.Stat(abs); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("SKBTRAIL_BIN=%s: not an executable file", p)
		}
		return abs, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			return "", errors.New("no go command in PATH to build ./cmd/skbtrail (set SKBTRAIL_BIN)")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the skbtrail module")
	}
	root := filepath.Dir(gomod)
	bin := filepath.Join(dir, "skbtrail")
	build := func(env string, args ...string) error {
		args = append(append([]string(nil), args...), "-o", bin, "./cmd/skbtrail")
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s go %s in %s failed: %v\n%s", env, strings.Join(args, " "), root, err, buf.String())
		}
		return nil
	}
	staticErr = build("CGO_ENABLED=0", shippedBuild...)
	if staticErr == nil {
		return bin, nil
	}
	if err := build("CGO_ENABLED=1", "build"); err != nil {
		return "", fmt.Errorf("%v\nand with cgo: %v", staticErr, err)
	}
	fmt.Fprintf(os.Stderr, "e2e: skbtrail does not build without cgo; testing a cgo build (TestStaticBinary fails):\n%v\n", staticErr)
	return bin, nil
}

// needRoot skips t when the tests cannot run at all.
func needRoot(t *testing.T) {
	t.Helper()
	if rootSkip != "" {
		t.Skip(rootSkip)
	}
}

// needBinary skips t when skbtrail is not available.
func needBinary(t *testing.T) {
	t.Helper()
	if binSkip != "" {
		t.Skip(binSkip)
	}
}
