#!/usr/bin/env bash
# The README's first command: install everything into .venv, then run the demo.
# VENV and PYTHON mean what they mean to tools/install.sh (VENV=none: install into and
# run with $PYTHON as it is).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash tools/install.sh
VENV=${VENV:-.venv}
if [ "$VENV" = none ]; then
    PY=$(command -v "${PYTHON:-python3}") || {
        echo "error: PYTHON=${PYTHON:-python3}: not found" >&2; exit 2; }
else
    PY="$VENV/bin/python"
fi
"$PY" tools/demo.py "$@"
