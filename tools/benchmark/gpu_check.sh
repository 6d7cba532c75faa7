#!/usr/bin/env bash
# The GPU check, one command for a machine with one GPU (about 5-8 minutes):
#   - each of the four hand-bone configs at 512x512 with AMP: 50 training iterations on
#     synthetic data (random initialisation, no downloads): iterations/s and peak memory;
#   - UperNet-BEiT slide-window inference of 2048x2048 images: images/s and peak memory;
#   - the figures as a markdown table on stdout and in work_dirs/gpu_check/gpu_check.md.
#
#   bash tools/benchmark/gpu_check.sh            # on the GPU machine
#   bash tools/benchmark/gpu_check.sh --tiny     # CPU, seconds: checks the script itself
#
# PYTHON chooses the interpreter (default: .venv/bin/python when it exists, else python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python; fi
fi
exec "$PYTHON" tools/benchmark/gpu_check.py "$@"
