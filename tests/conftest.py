"""Shared test set-up: a private Airflow home (SQLite) and clean ADP_ settings for every test session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Before anything imports Airflow: a throw-away AIRFLOW_HOME with the repo's dags/ and plugins/.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="adp-airflow-"))
for _key in [k for k in os.environ if k.startswith(("ADP_", "AIRFLOW"))]:
    del os.environ[_key]
from adpipeline.paths import apply_local_airflow_env  # noqa: E402

apply_local_airflow_env(_AIRFLOW_HOME)
os.environ["ADP_ENV_FILE"] = "/nonexistent/.env"  # never read a developer's .env in tests


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata database once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    return _AIRFLOW_HOME


@pytest.fixture
def adp_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """ADP_HOME in a temp folder, local paths allowed; returns a fresh Settings factory."""
    from adpipeline.settings import Settings, get_settings

    monkeypatch.setenv("ADP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADP_ALLOW_LOCAL_PATHS", "true")
    get_settings.cache_clear()
    yield Settings
    get_settings.cache_clear()
