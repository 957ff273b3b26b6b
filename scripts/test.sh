#!/usr/bin/env bash
# Set up .venv with the dev and notebook extras, then run the unit tests and every notebook
# (nbval) in test mode (UCGM_LAB_TEST_MODE=1 shrinks notebook training to seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh "dev,notebooks"
# shellcheck disable=SC1091
. .venv/bin/activate
export UCGM_LAB_TEST_MODE=1 MPLBACKEND=Agg
python -m pytest -p no:cacheprovider tests notebooks --nbval --nbval-current-env "$@"
