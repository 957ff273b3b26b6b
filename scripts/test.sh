#!/usr/bin/env bash
# Set up .venv with the dev and notebook extras (and Chromium for the browser tests), then run
# the unit tests, every widget notebook in JupyterLab in headless Chromium (tests/browser;
# screenshots and latencies in artifacts/browser/) and every notebook with nbval, in test mode
# (UCGM_LAB_TEST_MODE=1 shrinks notebook training to seconds). Arguments go to pytest, e.g.
# -m "not browser" to skip the browser tests locally. Then the reproducibility-sensitive tests
# run again with one thread and with the AVX2 kernels (scripts/test_reproducibility.sh), so a
# result that holds only on this machine's CPU, kernels or thread count fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "dev,notebooks"
# The browser tests (tests/browser) drive JupyterLab in the system's Chromium.
bash scripts/install_chromium.sh
# shellcheck disable=SC1091
. .venv/bin/activate
export UCGM_LAB_TEST_MODE=1 MPLBACKEND=Agg
echo "browser test screenshots and latencies go to $(pwd)/artifacts/browser/"
python -m pytest -p no:cacheprovider tests notebooks --nbval --nbval-current-env "$@"
bash scripts/test_reproducibility.sh
