#!/usr/bin/env bash
# Build the static site into site/ (or the folder given with --out): every notebook as a page
# with its stored outputs, the kernel-free explorers, a landing page. Open site/index.html in a
# browser; no server, no kernel. Arguments go to `python -m ucgm_lab.site build`, e.g. --quick
# (test-sized explorer grids) or --out DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
export MPLBACKEND=Agg OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec "$PYTHON" -m ucgm_lab.site build "$@"
