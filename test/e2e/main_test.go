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
)

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

// findBinary returns $SKBTRAIL_BIN, or builds ./cmd/skbtrail into dir.
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
	// As the product is built: without cgo (which also lets it drop
	// capabilities on every thread). Where that does not build yet, with
	// the default, and the tests that need it say why they fail.
	var buf bytes.Buffer
	for _, cgo := range []string{"0", ""} {
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/skbtrail")
		cmd.Dir = root
		if cgo != "" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		}
		buf.Reset()
		cmd.Stdout, cmd.Stderr = &buf, &buf
		if err := cmd.Run(); err == nil {
			return bin, nil
		} else if cgo != "" {
			binCgo = fmt.Sprintf("CGO_ENABLED=0 go build ./cmd/skbtrail failed (%v): %s", err, strings.TrimSpace(buf.String()))
		}
	}
	return "", fmt.Errorf("go build ./cmd/skbtrail in %s failed:\n%s", root, buf.String())
}

// binCgo, if set, says why the binary under test was built with cgo.
var binCgo string

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
