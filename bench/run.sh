#!/usr/bin/env bash
# bench/run.sh: skbtrail's benchmarks, as root, from the repository root or
# anywhere. Builds skbtrail and the benchmark binary, then runs:
#   (c)+(d) BenchmarkStartup: start to "begin trace...", idle peak RSS,
#           skbtrail against the minimal loader (bench/floor)
#   (a)+(b) BenchmarkFlood:   packets/s through a veth pair with no tool,
#           the floor (empty programs on the same tracepoints), skbtrail
#           tracing (filter matching nothing / everything), skbtrail drops
#           and the bpftrace one-liner, interleaved rounds
#   (b)     BenchmarkProgCost: BPF run time per packet from bpf_stats, as
#           ratios to the floor's, interleaved rounds
# and writes the raw output to bench/out/<date>.txt (and stdout).
#
#   sudo bench/run.sh [PACKETS_PER_ROUND [ROUNDS]]
#
# Needs: go, iproute2, bpftrace (apt-get install bpftrace), bpftool.
# Traffic stays in two namespaces it creates and deletes (198.19.254.0/24).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "run as root" >&2; exit 1; }
pkts=${1:-200000}
rounds=${2:-5}
out=bench/out/${BENCH_OUT:-$(date -u +%Y%m%dT%H%M%SZ)}.txt
mkdir -p bench/out
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/skbtrail" ./cmd/skbtrail
go build -o "$tmp/floor" ./bench/floor
go test -c -o "$tmp/bench.test" ./bench
export SKBTRAIL_BIN=$tmp/skbtrail FLOOR_BIN=$tmp/floor
{
	echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs, git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# bpftrace: $(bpftrace --version 2>/dev/null || echo none)"
	cd bench
	"$tmp/bench.test" -test.run '^$' -test.bench 'Startup' -test.benchtime 10x -test.v
	"$tmp/bench.test" -test.run '^$' -test.bench 'Flood' -test.benchtime "${pkts}x" -test.v -rounds "$rounds"
	"$tmp/bench.test" -test.run '^$' -test.bench 'ProgCost' -test.benchtime "${pkts}x" -test.v -rounds "$rounds"
	echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
echo "raw output: $out" >&2
