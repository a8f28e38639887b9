#!/usr/bin/env bash
# From nothing to results: set up, generate the sample, run the whole DAG chain through Airflow, print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ADP_HOME="${ADP_HOME:-$PWD/.local}"
exec .venv/bin/adpipeline demo "$@"
