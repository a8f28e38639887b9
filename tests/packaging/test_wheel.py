"""The built wheel installs into a fresh venv and runs a stage from there: SQL and package data ship inside it.

Offline: the wheel is built with setuptools' PEP 517 hook from the shared venv (no build isolation, no download),
installed with ``uv pip install --no-deps``, and the fresh venv reaches the locked dependencies through one ``.pth``
line naming the project venv's site-packages. That line adds the folder to ``sys.path`` without running the ``.pth``
files inside it, so the project's editable install of ``adpipeline`` stays invisible: only the wheel's copy can load.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv-uv" / "bin" / "uv"

RAW_ADS = """ad_id,date,campaign,image_url,video_url,impressions,clicks,spend,conversions
a1,2026-10-01,spring,https://ads.example/a.png,,1000,10,5.0,1
a2,2026-10-01,spring,https://ads.example/a.png,,500,4,2.5,0
a3,2026-10-02,autumn,,https://ads.example/v.mp4,800,8,4.0,2
"""

STAGE = """
import json, pathlib, sys
import adpipeline
from adpipeline.settings import Settings
from adpipeline.stages import ingest
from adpipeline.stages.context import StageContext
from adpipeline.warehouse.base import SQL_DIR
from adpipeline.window import Window

site = pathlib.Path(sys.argv[1]).resolve()
assert pathlib.Path(adpipeline.__file__).resolve().is_relative_to(site), adpipeline.__file__
assert SQL_DIR.resolve().is_relative_to(site), SQL_DIR
settings = Settings(_env_file=None, home=pathlib.Path(sys.argv[2]))
with StageContext(settings, Window.parse("2026-10-01", "2026-10-02")) as ctx:
    result = ingest.run(ctx)
    creatives = ctx.warehouse.read_table("creatives", order_by="url")
print(json.dumps({"result": result, "urls": creatives["url"].tolist()}))
"""


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd[:3]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_installs_and_runs_a_stage(tmp_path: Path) -> None:
    if not UV.exists():
        pytest.fail(f"uv not found at {UV}: run scripts/setup.sh", pytrace=False)
    # Build from a copy of the sources, so the checkout gets no build/ or egg-info folder.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "adpipeline", src / "adpipeline", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    build = "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    wheel = dist / _run([sys.executable, "-c", build, str(dist)], cwd=src).stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "adpipeline/sql/final/select_ads_enriched.sql" in names
    assert "adpipeline/features/prices.toml" in names and "adpipeline/py.typed" in names
    # Airflow is an extra, not a requirement: the wheel installs into an existing Airflow under its constraints.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert not any("apache-airflow" in r and "extra ==" not in r for r in requires), requires
    assert any(r.startswith("Requires-Dist: apache-airflow") and 'extra == "airflow"' in r for r in requires)

    venv = tmp_path / "venv"
    _run([str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    _run([str(UV), "pip", "install", "--quiet", "--offline", "--no-deps", "--python", str(python), str(wheel)])
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "locked_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    home = tmp_path / "home"
    csv = tmp_path / "raw_ads.csv"
    csv.write_text(RAW_ADS)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("ADP_")}
    env.update(ADP_HOME=str(home), ADP_ENV_FILE=str(tmp_path / "no.env"))
    # The console script from the wheel, then one stage (import) whose SQL comes from the installed package.
    _run([str(venv / "bin" / "adpipeline"), "load-csv", str(csv)], cwd=tmp_path, env=env)
    out = _run([str(python), "-c", textwrap.dedent(STAGE), str(site), str(home)], cwd=tmp_path, env=env).stdout
    data = json.loads(out.strip().splitlines()[-1])
    assert data["urls"] == ["https://ads.example/a.png", "https://ads.example/v.mp4"]
