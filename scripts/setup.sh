#!/usr/bin/env bash
# Create .venv and install the project exactly as locked (Python 3.11, Linux). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
UV=.venv/bin/uv
# sync: install exactly the lock (no re-resolve), compiled to .pyc (Airflow imports twice as slowly without them).
"$UV" pip sync --quiet --python .venv/bin/python --compile-bytecode requirements/lock.txt
"$UV" pip install --quiet --python .venv/bin/python --no-deps --compile-bytecode -e .
echo "setup: .venv ready ($(.venv/bin/python --version))"
