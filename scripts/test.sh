#!/usr/bin/env bash
# From nothing to a green test run: set up (project venv + BigQuery emulator venv), lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
UV="$PWD/.venv-uv/bin/uv" bash scripts/setup_bqemulator.sh
# The insights page's browser test drives Chromium from the system packages; install it once where we can.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } >/dev/null 2>&1 \
      || echo "could not install chromium: tests/insights/test_live_ui.py will skip its browser test" >&2
  else
    echo "no chromium and no apt-get/root to install it: tests/insights/test_live_ui.py will skip its browser test" >&2
  fi
fi
# The Celery tier (tests/scheduler/test_celery_tier.py) runs PostgreSQL and Redis from the system packages.
if ! command -v redis-server >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install \
        -y -qq postgresql redis-server; } >/dev/null 2>&1 || echo "could not install postgresql/redis-server" >&2
  else
    echo "no postgresql/redis-server and no apt-get/root to install them: the Celery tier will fail" >&2
  fi
fi
.venv/bin/ruff check .
.venv/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yaml
.venv/bin/mypy  # the package, with the pydantic plugin ([tool.mypy] in pyproject.toml)
exec .venv/bin/python -m pytest "$@"
