#!/usr/bin/env bash
# The Airflow UI on http://127.0.0.1:8080 (AIRFLOW__API__PORT=8090 bash scripts/ui.sh for another port) over the
# same local files as the demo: scheduler, dag-processor, triggerer
# and api-server (LocalExecutor, SQLite) via `airflow standalone`. Bound to 127.0.0.1 only, and never open without a
# login: user `admin`, with a random password generated on first start and printed below (kept in
# $AIRFLOW_HOME/simple_auth_manager_passwords.json). Stop it with Ctrl-C (SIGINT).
# The insights page (plugins/adpipeline_insights.py) is under "Insights" in the menu.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__PLUGINS_FOLDER="$PWD/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# One host and port (AIRFLOW__API__HOST / AIRFLOW__API__PORT, default 127.0.0.1:8080); the UI's base URL and the
# execution API URL the task processes call are derived from them (adpipeline/paths.py: api_server_env).
eval "$(python -m adpipeline.paths)"
export ADP_HOME="${ADP_HOME:-$PWD/.local}" ADP_ALLOW_LOCAL_PATHS=true
mkdir -p "$AIRFLOW_HOME"
PASSWORDS="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
if [ ! -s "$PASSWORDS" ]; then
  python -c 'import json, secrets, sys; json.dump({"admin": secrets.token_urlsafe(12)}, open(sys.argv[1], "w"))' "$PASSWORDS"
  chmod 600 "$PASSWORDS"
fi
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$PASSWORDS"
airflow db migrate > /dev/null
adpipeline airflow-init            # pools from the list in code, DAGs parsed and unpaused
echo "Airflow UI: http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT  login: admin / $(python -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin"])' "$PASSWORDS")"
echo "Insights page: http://$AIRFLOW__API__HOST:$AIRFLOW__API__PORT/plugin/adpipeline-insights"
exec airflow standalone
