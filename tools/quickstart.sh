#!/usr/bin/env bash
# The README's first command: install everything into .venv, then run the demo.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash tools/install.sh
VENV=${VENV:-.venv}
"$VENV/bin/python" tools/demo.py "$@"
