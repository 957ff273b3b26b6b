#!/usr/bin/env bash
# The first-GPU-day check (scale/gpu_check.py): refuses within seconds without CUDA; otherwise
# about 8 minutes at most (hard stop at 9), one JSON per row in --out as each row ends.
#   bash scale/gpu_check.sh [--out DIR]      (PYTHON=/path/to/python to pick the interpreter)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m scale.gpu_check "$@"
