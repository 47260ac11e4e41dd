// Package e2e holds skbtrail's end-to-end tests: each scenario builds a pair
// of network namespaces joined by a veth pair, runs the real skbtrail binary
// against the running kernel, makes traffic between the namespaces and checks
// what the tool reported.
//
// The tests need root. They build ./cmd/skbtrail once, as it ships: without
// cgo, a static binary (SKBTRAIL_BIN names a prebuilt binary instead). Without root, or when the build fails, they are
// skipped, unless CI=true, in which case the test binary fails.
//
// Test traffic stays inside the namespaces the tests create, between
// addresses from 198.18.0.0/15 and fd00::/8. Every namespace is named
// sbt-<pid><random>-a / -b and deleted when its test ends (with its links and
// nft tables); at start, a run deletes those left by test processes that no
// longer exist.
//
//	sudo go test -count=1 -v ./test/e2e/
package e2e
