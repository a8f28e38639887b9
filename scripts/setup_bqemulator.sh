#!/usr/bin/env bash
# Create .venv-bq, the BigQuery emulator's own venv (bqemulator pins an older sqlglot than the project uses).
# Idempotent: when .venv-bq already matches requirements/bqemulator.txt this returns in well under a second.
# Uses "${UV:-uv}"; set UV=/path/to/uv to pick another uv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BQEMULATOR_VENV:-$ROOT/.venv-bq}"
REQS="$ROOT/requirements/bqemulator.txt"
UV="${UV:-uv}"
if ! command -v "$UV" >/dev/null 2>&1 && [ -x "$ROOT/.venv/bin/uv" ]; then
    UV="$ROOT/.venv/bin/uv"
fi
STAMP="$VENV/.requirements.sha256"
want="$(sha256sum "$REQS" | cut -d' ' -f1)"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "bqemulator venv up to date: $VENV"
    exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$UV" venv --python 3.11 "$VENV"
fi
"$UV" pip sync --python "$VENV/bin/python" "$REQS"
"$VENV/bin/python" -c "import bqemulator, numpy" # fails loudly if the install is incomplete
echo "$want" > "$STAMP"
echo "bqemulator venv ready: $VENV"
