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
