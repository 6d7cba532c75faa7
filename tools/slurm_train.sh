#!/usr/bin/env bash
# Training on a SLURM cluster: srun starts one task per GPU and mmengine reads the
# SLURM_* variables (--launcher slurm).
#   GPUS=16 GPUS_PER_NODE=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [options]
# Checked before srun (one `error:` line, exit 2): the three arguments, the config, and
# GPUS / GPUS_PER_NODE / CPUS_PER_TASK positive integers. PYTHON: the interpreter the
# tasks run (default: python from the compute nodes' PATH; not checked here, as it need
# not exist on the login node).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=tools/_launch_check.sh
source "$ROOT/tools/_launch_check.sh"
PARTITION=${1:-}
JOB_NAME=${2:-}
CONFIG=${3:-}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PYTHON=${PYTHON:-python}
[ -n "$PARTITION" ] && [ -n "$JOB_NAME" ] \
    || launch_die "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [options]"
launch_check_file config "$CONFIG"
launch_check_count GPUS "$GPUS"
launch_check_count GPUS_PER_NODE "$GPUS_PER_NODE"
launch_check_count CPUS_PER_TASK "$CPUS_PER_TASK"
command -v srun >/dev/null 2>&1 || launch_die "srun not found: run this on a SLURM login node"

# shellcheck disable=SC2086  # SRUN_ARGS is a list of options on purpose
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" --launcher slurm "${@:4}"
