#!/usr/bin/env bash
# Set up .venv and run the main job: the CPU demo (train multi-step and few-step toy models,
# sample them across step counts, write a report). Extra arguments go to `ucgm-lab demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# shellcheck disable=SC1091
. .venv/bin/activate
ucgm-lab demo "$@"
