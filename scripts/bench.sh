#!/usr/bin/env bash
# Runs the benchmark suite: stock asyncio, uvloop, rloop and corenet side by side.
# --short: a few rounds each, as CI does, so the benchmarks never rot.
set -euo pipefail
export SETUP_FOR=test
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ulimit -n 65536 2>/dev/null || true
args=()
if [ "${1:-}" = "--short" ]; then
    shift
    export CORENET_BENCH_SHORT=1
    args=(--benchmark-min-rounds=1 --benchmark-max-time=0.05 --benchmark-warmup=off)
fi
step "running the benchmarks${CORENET_BENCH_SHORT:+ (short mode)}"
exec .venv/bin/python -m pytest -q benchmarks -p no:cacheprovider --benchmark-columns=ops,mean,stddev,rounds \
    --benchmark-sort=name "${args[@]}" "$@"
