#!/usr/bin/env bash
# Distributed testing through torchrun (GPUs, or CPU ranks).
#   bash tools/dist_test.sh CONFIG CHECKPOINT RANKS [test.py options]
# Several nodes and the interpreter: see tools/torchrun.sh (PYTHON: the interpreter,
# default python from PATH).
set -euo pipefail
# shellcheck source=tools/_launch_check.sh
source "$(dirname "$0")/_launch_check.sh"
launch_check_file config "${1:-}"
launch_check_file checkpoint "${2:-}"
launch_check_count RANKS "${3:-}"
exec bash "$(dirname "$0")/torchrun.sh" "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"
