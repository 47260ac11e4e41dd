package nftrace

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs fn in the network namespace at path ("" = the current one).
//
// Netlink sockets belong to the namespace of the thread that creates them,
// and a child process starts in the namespace of the thread that forks it,
// so fn runs on a fresh goroutine locked to its OS thread, switched into the
// namespace and back. Should switching back fail, the goroutine exits
// without unlocking, and the Go runtime then ends that thread rather than
// reuse it in the wrong namespace.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w (give a namespace file such as /run/netns/NAME or /proc/PID/ns/net)", path, err)
	}
	defer target.Close()

	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("open the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("enter network namespace %s: %w (run as root)", path, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- fmt.Errorf("return from network namespace %s: %w", path, err) // thread stays locked: discarded
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}
