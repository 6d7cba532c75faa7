#!/usr/bin/env bash
# Distributed training through torchrun (one or several nodes; GPUs, or CPU ranks).
#   bash tools/dist_train.sh CONFIG RANKS [train.py options]
# Several nodes and the interpreter: see tools/torchrun.sh (NNODES, NODE_RANK,
# MASTER_ADDR, PORT, PYTHON: the interpreter, default python from PATH).
set -euo pipefail
# shellcheck source=tools/_launch_check.sh
source "$(dirname "$0")/_launch_check.sh"
launch_check_file config "${1:-}"
launch_check_count RANKS "${2:-}"
exec bash "$(dirname "$0")/torchrun.sh" "$2" train.py "$1" --launcher pytorch "${@:3}"
