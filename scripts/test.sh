#!/usr/bin/env bash
# Installs what the tests need (the lab tools and the test extras), builds corenet into
# ./.venv and runs the whole test suite, as root in parallel workers isolated from each other
# (scripts/lib.sh, pytest_workers; CORENET_TEST_WORKERS=0 runs it in one process). Extra
# arguments go to pytest.
set -euo pipefail
export SETUP_FOR=test
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
pytest_workers "$PWD/.venv/bin/python"
step "running the tests (several minutes)"
exec .venv/bin/python -m pytest -q -ra "${WORKER_ARGS[@]}" "$@"
