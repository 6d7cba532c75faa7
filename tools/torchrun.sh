#!/usr/bin/env bash
# Start a tool on every local rank through torchrun (torch.distributed.run); what
# dist_train.sh and dist_test.sh share.
#   bash tools/torchrun.sh RANKS TOOL.py [tool arguments] --launcher pytorch
# One or several nodes: run the same command on every node with
#   NNODES=2 NODE_RANK=<0|1> MASTER_ADDR=<ip of node 0> PORT=29500
# PYTHON chooses the interpreter (default: python from PATH). Without GPUs the ranks run
# on the CPU over gloo (tools/train.py and tools/test.py set that up themselves).
set -euo pipefail
RANKS=$1
TOOL=$2
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-python}

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$RANKS" \
    "$ROOT/tools/$TOOL" "${@:3}"
