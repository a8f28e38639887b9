#!/usr/bin/env bash
# From nothing to a green test run: set up (project venv + BigQuery emulator venv), lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
UV="$PWD/.venv-uv/bin/uv" bash scripts/setup_bqemulator.sh
.venv/bin/ruff check .
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yaml
.venv/bin/mypy  # the package, with the pydantic plugin ([tool.mypy] in pyproject.toml)
exec .venv/bin/python -m pytest "$@"
