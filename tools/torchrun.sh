#!/usr/bin/env bash
# Start a tool on every local rank through torchrun (torch.distributed.run); what
# dist_train.sh and dist_test.sh share.
#   bash tools/torchrun.sh RANKS TOOL.py [tool arguments] --launcher pytorch
# One or several nodes: run the same command on every node with
#   NNODES=2 NODE_RANK=<0|1> MASTER_ADDR=<ip of node 0> PORT=29500
# PYTHON chooses the interpreter (default: python from PATH; tools/cv.py passes the one it
# runs under, so an environment that is not activated works). Without GPUs the ranks run
# on the CPU over gloo (tools/train.py and tools/test.py set that up themselves).
# Checked before any rank starts (one `error:` line, exit 2): RANKS a positive integer
# and at most the GPUs (or CPU cores) of this node (ALLOW_OVERSUBSCRIBE=1 for more), the
# tool present, NNODES/NODE_RANK in range, the rendezvous PORT free on node 0. A rank
# that fails says why in one line; torchrun's own 30-line report of it is left out.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tools/_launch_check.sh
source "$ROOT/tools/_launch_check.sh"
RANKS=${1:-}
TOOL=${2:-}
PYTHON=${PYTHON:-python}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}

launch_check_ranks "$RANKS"
command -v "$PYTHON" >/dev/null 2>&1 \
    || launch_die "PYTHON=$PYTHON: no such interpreter (name the python to run the ranks)"
"$PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)' \
    2>/dev/null || launch_die "PYTHON=$PYTHON: has no torch (name the python of the" \
    "environment mmseg_ext is installed in)"
[ -n "$TOOL" ] && [ -f "$ROOT/tools/$TOOL" ] || launch_die "no tool tools/$TOOL"
launch_check_count NNODES "$NNODES"
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] && [ "$NODE_RANK" -lt "$NNODES" ] \
    || launch_die "NODE_RANK must be in 0..$((NNODES - 1)), got '$NODE_RANK'"
if [ "$NODE_RANK" = 0 ]; then
    launch_check_port "$PYTHON" "${MASTER_ADDR:-127.0.0.1}" "$PORT"
fi

# torchrun runs as a child (its stderr through the filter); SIGTERM/SIGINT sent to this
# script are passed on to it, so killing the launcher stops the ranks too
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="$PORT" \
    --nproc_per_node="$RANKS" \
    "$ROOT/tools/$TOOL" "${@:3}" 2> >("$PYTHON" "$ROOT/tools/_torchrun_filter.py") &
child=$!
stopped=''
trap 'stopped=143; kill -TERM "$child" 2>/dev/null' TERM
trap 'stopped=130; kill -INT "$child" 2>/dev/null' INT
set +e
while :; do
    wait "$child"
    code=$?
    kill -0 "$child" 2>/dev/null || break  # wait returned for a trapped signal
done
wait  # the filter has printed everything
# stopped by a signal: the status every tool gives for it (torchrun's own is 1)
exit "${stopped:-$code}"
