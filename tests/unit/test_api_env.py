"""The execution API URL follows the API host and port (scripts/ui.sh, the real-scheduler tier, the compose file)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from adpipeline.paths import REPO, api_server_env


def test_execution_api_url_follows_the_port() -> None:
    env = api_server_env({"AIRFLOW__API__PORT": "8090"})
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8090"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8090/execution/"
    assert api_server_env({})["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8080/execution/"
    wildcard = api_server_env({"AIRFLOW__API__HOST": "0.0.0.0", "AIRFLOW__API__PORT": "9000"})
    assert wildcard["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:9000/execution/"
    behind_proxy = api_server_env({"AIRFLOW__API__BASE_URL": "https://air.example.com/af/", "AIRFLOW__API__PORT": "1"})
    assert behind_proxy["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "https://air.example.com/af/execution/"
    explicit = api_server_env({"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://api:1/execution/"})
    assert explicit["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api:1/execution/"


def _fake_repo(tmp_path: Path) -> tuple[Path, Path]:
    """scripts/ui.sh in a copy of the repo layout whose setup, airflow and adpipeline only record what they got."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "ui.sh", root / "scripts" / "ui.sh")
    (root / "scripts" / "setup.sh").write_text("exit 0\n")
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    record = tmp_path / "airflow-calls.txt"
    fake = (
        "#!/usr/bin/env bash\n"
        'echo "$(basename "$0") $* port=$AIRFLOW__API__PORT exec=$AIRFLOW__CORE__EXECUTION_API_SERVER_URL"'
        f" >> {record}\n"
    )
    for name in ("airflow", "adpipeline"):
        (bin_dir / name).write_text(fake)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return root, record


def test_ui_script_derives_the_execution_api_url(tmp_path: Path) -> None:
    root, record = _fake_repo(tmp_path)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "ADP_"))}
    env = {**keep, "AIRFLOW__API__PORT": "8090", "AIRFLOW_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        ["bash", str(root / "scripts" / "ui.sh")], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "http://127.0.0.1:8090/plugin/adpipeline-insights" in out.stdout
    calls = record.read_text().splitlines()
    standalone = [c for c in calls if c.startswith("airflow standalone")]
    assert standalone == ["airflow standalone port=8090 exec=http://127.0.0.1:8090/execution/"], calls


def test_scheduler_tier_runs_on_another_port(tmp_path: Path) -> None:
    from tests.scheduler.cluster import AirflowCluster

    env = AirflowCluster(root=tmp_path).env()
    port = env["AIRFLOW__API__PORT"]
    assert port != "8080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://127.0.0.1:{port}/execution/"


def test_compose_derives_the_execution_api_url_from_its_port() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    env = compose["x-airflow-common-env"]
    assert (
        env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]
        == "http://airflow-apiserver:${AIRFLOW_API_PORT:-8080}/execution/"
    )
    assert env["AIRFLOW__API__PORT"] == "${AIRFLOW_API_PORT:-8080}"
    api = compose["services"]["airflow-apiserver"]
    assert api["ports"] == ["127.0.0.1:${AIRFLOW_API_PORT:-8080}:${AIRFLOW_API_PORT:-8080}"]
