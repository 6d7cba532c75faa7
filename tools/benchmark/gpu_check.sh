#!/usr/bin/env bash
# The GPU check, one command for a machine with one GPU (about 16 minutes on an H200,
# 2026-11-30: each config spends ~75 s outside its timed iterations; split it with
# --configs to fit a 15-minute lease):
#   - each hand-bone config (the four of the card, SegFormer MiT-B2, the small-data
#     recipe, the U-Nets on timm encoders at 512 and the ConvNeXt-S U-Net at 1024) with
#     AMP: 50 training iterations on synthetic data (random initialisation, no
#     downloads): iterations/s and peak memory; timm configs are skipped (one row
#     each) where timm is not installed;
#   - UperNet-BEiT slide-window inference and U-Net/ConvNeXt-S whole-image inference of
#     2048x2048 images: images/s and peak memory;
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
