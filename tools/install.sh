#!/usr/bin/env bash
# Install everything mmseg_ext needs into a virtual environment, from nothing.
#
#   bash tools/install.sh                          # default: maintained stack, pure Python
#   TORCH=keep VENV=none bash tools/install.sh     # keep the (CUDA) torch of the active env
#   STACK=openmmlab bash tools/install.sh          # upstream mmseg 1.2.2 + mmcv 2.1.0 ops
#
# Two stacks give the same import names (mmengine, mmcv, mmseg):
#   onedl      (default) onedl-mmengine 0.10.x, onedl-mmcv 2.3.x, onedl-mmsegmentation
#              1.4.x: the maintained continuation. Nothing is compiled: onedl-mmcv builds
#              without its C++/CUDA ops, which none of the shipped configs needs, so any
#              torch works. About 2 minutes from nothing on 2 cores.
#   openmmlab  mmengine 0.10.7, mmsegmentation 1.2.2, mmcv 2.1.0 with compiled ops:
#              a prebuilt wheel from $MMCV_WHEEL_DIR when it was built for exactly this
#              torch and Python, else a wheel this script built earlier (cached under
#              $MMCV_CACHE per torch/Python), else a source build (setuptools<70,
#              --no-build-isolation; about 26 min on 2 cores; CUDA ops when a CUDA torch
#              and toolkit are present or FORCE_CUDA=1).
#
# Steps: 1. torch ($TORCH, default torch==2.13.0; TORCH=keep keeps the installed one)
#        2. the other stack's distributions are removed (both write the same packages)
#        3. requirements/runtime.txt + tests.txt + the stack's file (+ mmcv for openmmlab)
#        3b. timm encoders (requirements/timm.txt) when a torchvision matching torch
#            imports: the installed one, else torchvision 0.(minor+15) without deps;
#            otherwise skipped with a note (timm needs torchvision; a resolver-chosen
#            one would replace torch). TIMM=no skips it.
#        3c. ONNX export and onnxruntime inference (requirements/export.txt, the
#            `export` extra, about 124 MB); EXPORT=no skips it (docs/export.md)
#        4. mmseg_ext itself (editable)
#        5. `import mmseg_ext` runs the environment check
#
# Variables: STACK, VENV (default .venv; "none" = use $PYTHON as is), PYTHON (default
# python3), TORCH (one or more requirement specifiers, e.g. "torch==2.14.1
# torchvision==0.29.1"), TIMM (auto | no), EXPORT (yes | no), MMCV_WHEEL_DIR (default ../shared/wheels), MMCV_CACHE
# (default ~/.cache/mmseg_ext/mmcv), MAX_JOBS (parallel compile jobs, default nproc).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
STACK=${STACK:-onedl}
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH=${TORCH:-torch==2.13.0}
TIMM=${TIMM:-auto}
EXPORT=${EXPORT:-yes}
MMCV_VERSION=2.1.0
MMCV_WHEEL_DIR=${MMCV_WHEEL_DIR:-$ROOT/../shared/wheels}
MMCV_CACHE=${MMCV_CACHE:-$HOME/.cache/mmseg_ext/mmcv}
# the shared prebuilt wheel was built for exactly this torch and CPython
PREBUILT_TORCH=2.13.0+cpu
PREBUILT_PY=cp311

say() { printf '[install] %s\n' "$*"; }
die() { printf '[install] error: %s\n' "$*" >&2; exit 1; }

case "$STACK" in
    onedl) OTHER_DISTS=(mmcv mmcv-full mmcv-lite mmengine mmengine-lite mmsegmentation) ;;
    openmmlab) OTHER_DISTS=(onedl-mmcv onedl-mmengine onedl-mmsegmentation) ;;
    *) die "STACK=$STACK is not a stack; use STACK=onedl (default) or STACK=openmmlab" ;;
esac
START=$(date +%s)

if [ "$VENV" != none ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating virtual environment $VENV with $PYTHON"
        "$PYTHON" -m venv "$VENV" || die "could not create $VENV with $PYTHON"
    fi
    PY="$ROOT/$VENV/bin/python"
    [ -x "$PY" ] || PY="$VENV/bin/python"
else
    PY=$(command -v "$PYTHON")
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "$("$PY" -V 2>&1) is too old: both stacks need Python >= 3.10"
PIP=("$PY" -m pip install --disable-pip-version-check)
say "stack: $STACK | python: $("$PY" -c 'import sys; print(sys.version.split()[0], sys.executable)')"

# 1. torch -----------------------------------------------------------------------------
if [ "$TORCH" = keep ]; then
    "$PY" -c 'import torch' 2>/dev/null \
        || die "TORCH=keep but torch is not importable with $PY; install it first"
else
    say "installing $TORCH"
    read -ra TORCH_SPECS <<< "$TORCH"
    "${PIP[@]}" -q "${TORCH_SPECS[@]}"
fi
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
PY_TAG=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
say "torch $TORCH_VERSION on $PY_TAG"

# 2. the other stack out first: its files share the import names ------------------------
installed_other=()
for dist in "${OTHER_DISTS[@]}"; do
    if "$PY" -m pip show -q "$dist" >/dev/null 2>&1; then installed_other+=("$dist"); fi
done
if [ "${#installed_other[@]}" -gt 0 ]; then
    say "removing the other stack's ${installed_other[*]}"
    "$PY" -m pip uninstall -y -q "${installed_other[@]}"
fi

# 3. requirements -------------------------------------------------------------------
say "installing requirements/runtime.txt, tests.txt and $STACK.txt"
"${PIP[@]}" -q -r requirements/runtime.txt -r requirements/tests.txt -r "requirements/$STACK.txt"

if [ "$STACK" = openmmlab ]; then
    mmcv_ok() {
        "$PY" - <<PYEOF 2>/dev/null
import importlib.metadata as m, importlib
assert m.version('mmcv') == '$MMCV_VERSION'
importlib.import_module('mmcv._ext')
PYEOF
    }
    if mmcv_ok; then
        say "mmcv $MMCV_VERSION with ops already installed"
    else
        "$PY" -m pip uninstall -y -q mmcv mmcv-lite mmcv-full 2>/dev/null || true
        CACHE_DIR="$MMCV_CACHE/torch-${TORCH_VERSION}-${PY_TAG}"
        prebuilt=$(ls "$MMCV_WHEEL_DIR"/mmcv-"$MMCV_VERSION"-"$PY_TAG"-*.whl 2>/dev/null | head -n 1 || true)
        cached=$(ls "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
        if [ -n "$prebuilt" ] && [ "$TORCH_VERSION" = "$PREBUILT_TORCH" ] && [ "$PY_TAG" = "$PREBUILT_PY" ]; then
            say "installing prebuilt $prebuilt"
            "${PIP[@]}" -q --no-deps "$prebuilt"
        elif [ -n "$cached" ]; then
            say "installing mmcv built earlier for this torch: $cached"
            "${PIP[@]}" -q --no-deps "$cached"
        fi
        if ! mmcv_ok; then
            "$PY" -m pip uninstall -y -q mmcv 2>/dev/null || true
            say "building mmcv $MMCV_VERSION from source against torch $TORCH_VERSION"
            say "(about 26 minutes on 2 CPU cores; the wheel is kept in $CACHE_DIR)"
            "${PIP[@]}" -q "setuptools<70" wheel ninja packaging
            mkdir -p "$CACHE_DIR"
            MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
                "$PY" -m pip wheel --no-build-isolation --no-deps --disable-pip-version-check \
                -w "$CACHE_DIR" "mmcv==$MMCV_VERSION"
            # torch 2.13 itself needs setuptools>=77: back to what openmmlab.txt asks for
            "${PIP[@]}" -q --upgrade -r requirements/openmmlab.txt
            "${PIP[@]}" -q --no-deps "$CACHE_DIR"/mmcv-"$MMCV_VERSION"-*.whl
            mmcv_ok || die "mmcv $MMCV_VERSION was built but its ops do not import"
        fi
    fi
    say "mmcv $MMCV_VERSION with compiled ops: ok"
fi

# 3b. timm encoders ----------------------------------------------------------------------
torchvision_ok() { "$PY" -c 'import torchvision.ops.misc' >/dev/null 2>&1; }
if [ "$TIMM" = no ]; then
    say "timm: skipped (TIMM=no)"
else
    if ! torchvision_ok; then
        TV=$("$PY" -c 'import torch; v = torch.__version__.split("+")[0].split("."); print(f"0.{int(v[1]) + 15}.*")')
        say "timm needs torchvision: trying torchvision==$TV for torch $TORCH_VERSION (no deps)"
        if ! "${PIP[@]}" -q --no-deps "torchvision==$TV" >/dev/null 2>&1 || ! torchvision_ok; then
            "$PY" -m pip uninstall -y -q torchvision >/dev/null 2>&1 || true
        fi
    fi
    if torchvision_ok; then
        say "installing requirements/timm.txt (torchvision $("$PY" -c 'import torchvision; print(torchvision.__version__)'))"
        "${PIP[@]}" -q -r requirements/timm.txt
    else
        say "timm: skipped, no torchvision imports beside torch $TORCH_VERSION (a CPU-only"
        say "      torch needs torchvision from the same index; e.g. TORCH=\"torch==2.14.1"
        say "      torchvision==0.29.1\"). Configs with TimmEncoder need it; the rest works."
    fi
fi

# 3c. ONNX export --------------------------------------------------------------------
if [ "$EXPORT" = no ]; then
    say "export: skipped (EXPORT=no); tools/export.py says how to add it"
elif "${PIP[@]}" -q -r requirements/export.txt; then
    say "export: $("$PY" -c 'import onnx, onnxruntime, onnxscript; print("onnx", onnx.__version__, "| onnxruntime", onnxruntime.__version__, "| onnxscript", onnxscript.__version__)' 2>/dev/null || echo 'requirements/export.txt installed')"
else
    say "export: pip could not install requirements/export.txt; everything but"
    say "        tools/export.py and .onnx inference works without it"
fi

# 4. mmseg_ext itself -----------------------------------------------------------------
say "installing mmseg_ext (editable)"
"${PIP[@]}" -q --no-deps --no-build-isolation -e .

# 5. check -------------------------------------------------------------------------
"$PY" -c 'import mmseg_ext, mmseg, mmcv, torch; print("[install] ok: mmseg_ext", mmseg_ext.__version__, "| mmseg", mmseg.__version__, "| mmcv", mmcv.__version__, "| torch", torch.__version__)'
say "done in $(( $(date +%s) - START )) s"
