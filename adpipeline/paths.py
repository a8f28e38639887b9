"""Where the repository's folders are, and the Airflow environment used for local runs."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"


def local_airflow_env(home: Path | None = None) -> dict[str, str]:
    """Environment for Airflow with SQLite inside the repo (what ``adpipeline run``/``demo`` and the tests use).
    Values already set in the environment win, so a real deployment is never overridden."""
    defaults = {
        "AIRFLOW_HOME": str(home or REPO / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
    }
    return {key: os.environ.get(key, value) for key, value in defaults.items()}


def apply_local_airflow_env(home: Path | None = None) -> dict[str, str]:
    """Set :func:`local_airflow_env` in ``os.environ`` (before Airflow is imported)."""
    env = local_airflow_env(home)
    os.environ.update(env)
    return env


def api_server_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Airflow API settings derived from one host and port (``AIRFLOW__API__HOST``/``AIRFLOW__API__PORT``,
    default 127.0.0.1:8080): the UI's base URL and the execution API URL that task processes call. Without this a UI
    moved to another port (8080 busy) still sends every task to 8080 and each one fails with a refused connection.
    A value already set explicitly wins; a wildcard bind address (0.0.0.0, ::) is reached through 127.0.0.1."""
    env = os.environ if environ is None else environ
    host = env.get("AIRFLOW__API__HOST") or "127.0.0.1"
    port = env.get("AIRFLOW__API__PORT") or "8080"
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]") else host
    if ":" in reach and not reach.startswith("["):
        reach = f"[{reach}]"
    base_url = (env.get("AIRFLOW__API__BASE_URL") or f"http://{reach}:{port}").rstrip("/")
    execution = env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") or f"{base_url}/execution/"
    return {
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": port,
        "AIRFLOW__API__BASE_URL": base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution,
    }


if __name__ == "__main__":  # ``eval "$(python -m adpipeline.paths)"`` in scripts/ui.sh
    import shlex

    for _key, _value in api_server_env().items():
        print(f"export {_key}={shlex.quote(_value)}")
