#!/usr/bin/env bash
# Distributed testing through torchrun (GPUs, or CPU ranks).
#   bash tools/dist_test.sh CONFIG CHECKPOINT RANKS [test.py options]
# Several nodes and the interpreter: see tools/torchrun.sh.
set -euo pipefail
exec bash "$(dirname "$0")/torchrun.sh" "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
