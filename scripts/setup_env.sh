#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install ucgm-lab into it.
# Usage: bash scripts/setup_env.sh [extras]   e.g. "dev,notebooks"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0"
if [ -n "$extras" ]; then
  python -m pip install -q -e ".[${extras}]"
else
  python -m pip install -q -e .
fi
if [[ ",$extras," == *",notebooks,"* || ",$extras," == *",dev,"* ]]; then
  # Peer libraries for the plug-and-play notebook and tests. Their declared dependencies pull
  # a CUDA build of torch and lightning, which they do not need for what we use.
  python -m pip install -q --no-deps -r requirements-peers.txt
fi
if [[ ",$extras," == *",notebooks,"* ]]; then
  # Trust the project's notebooks, so that JupyterLab shows the stored widgets (every
  # explorer's first figure) without running anything. Safe: they are this repository's files.
  python -m jupyter trust notebooks/*.ipynb >/dev/null
fi
