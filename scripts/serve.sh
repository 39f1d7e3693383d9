#!/usr/bin/env bash
# Sets up everything and runs the main job. Extra arguments go to the command.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ -f resolver/cli.py ]; then
    exec .venv/bin/corenet-resolver serve "$@"
fi
# Until the resolver daemon lands, the main job is the loop's benchmark.
exec bash scripts/bench.sh "$@"
