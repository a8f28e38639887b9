#!/usr/bin/env bash
# Create .venv and install the project exactly as locked (Python 3.11, Linux). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, found {sys.version}"'
# uv lives in its own small venv: `uv pip sync` removes from .venv everything the lock does not list.
if [ ! -x .venv-uv/bin/uv ]; then
  "$PYTHON" -m venv .venv-uv
  .venv-uv/bin/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
UV="$PWD/.venv-uv/bin/uv"
if [ ! -x .venv/bin/python ]; then
  "$UV" venv --quiet --python "$PYTHON" .venv
fi
# sync: install exactly the lock (no re-resolve), compiled to .pyc (Airflow imports twice as slowly without them).
"$UV" pip sync --quiet --python .venv/bin/python --compile-bytecode requirements/lock.txt
"$UV" pip install --quiet --python .venv/bin/python --no-deps --compile-bytecode -e ".[airflow]"  # deps: the lock
# The CeleryExecutor's packages, pinned against the lock (as the Docker image installs them), for the Celery tier.
"$UV" pip install --quiet --python .venv/bin/python --no-deps --compile-bytecode -r requirements/celery.txt
# opencv-python and opencv-python-headless share the cv2/ folder: when a plain opencv-python installed by hand is
# removed by the sync above, it takes the headless wheel's files with it. Reinstall the locked wheel if so.
if ! .venv/bin/python -c "import cv2; cv2.resize" 2>/dev/null; then
  "$UV" pip install --quiet --python .venv/bin/python --no-deps --reinstall \
    "$(grep -E '^opencv-python-headless==' requirements/lock.txt)"
fi
echo "setup: .venv ready ($(.venv/bin/python --version))"
