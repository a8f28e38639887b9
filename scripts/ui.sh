#!/usr/bin/env bash
# Optional: the Airflow UI on http://localhost:8080 (login admin / admin) over the same local files as the demo,
# with the insights page (plugins/adpipeline_insights.py) under "Insights" in the menu.
# Stop it with Ctrl-C (SIGINT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags" AIRFLOW__CORE__PLUGINS_FOLDER="$PWD/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export ADP_HOME="${ADP_HOME:-$PWD/.local}" ADP_ALLOW_LOCAL_PATHS=true
mkdir -p "$AIRFLOW_HOME"
# A fixed local login for the simple auth manager (local use only).
echo '{"admin": "admin"}' > "$AIRFLOW_HOME/simple_auth_manager_passwords.json"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/simple_auth_manager_passwords.json"
airflow db migrate > /dev/null
airflow pools set media_fetch 4 "media fetches (external web servers)" > /dev/null
airflow pools set genai_api 2 "model API calls (Gemini / LangChain)" > /dev/null
echo "Airflow UI: http://localhost:8080 (admin / admin); insights page: http://localhost:8080/plugin/adpipeline-insights"
exec airflow standalone
