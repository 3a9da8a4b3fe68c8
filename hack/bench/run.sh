#!/usr/bin/env bash
# Runs the benchmark harness (e2e/bench) with the tools `make bench` installed into ./bin.
# Env: BENCH_RUNS (5), BENCH_RUNS_20K (2), BENCH_SAMPLES (30), BENCH_IDLE (60s), BENCH_FILE_KIB (100),
#   BENCH_CASES (restore,push,restore20k,push20k,idle,propagation,rss100k), BENCH_PEERS (rclone,gcloud),
#   BENCH_OUT (_artifacts/bench/TIMESTAMP), BENCH_WORK (a temp dir), BENCH_KEEP=1 keeps it.
# Extra arguments go to the harness (e.g. hack/bench/run.sh -runs 1 -cases restore).
set -o errexit -o nounset -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PATH="$ROOT/bin:$PATH"
cd "$ROOT/e2e"
go build -o "$ROOT/bin/filesync-bench" ./bench
exec "$ROOT/bin/filesync-bench" -root "$ROOT" "$@"
