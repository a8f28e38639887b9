"""The real thing: the Airflow api-server with the plugin on 127.0.0.1 over a chain run on a slice of the demo sample,
Airflow's simple auth manager with two test users, and the page driven in headless Chromium.

Chromium comes from the system packages (``scripts/test.sh`` installs it when missing); the test skips, saying so,
only where no Chromium can be found. Screenshots are saved under the test's temp dir.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adpipeline.paths import REPO
from adpipeline.settings import Settings
from tests.insights.cdp import Browser, find_chromium
from tests.locked import require_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

START = dt.date(2026, 10, 1)
ASSETS = REPO / "adpipeline" / "demo" / "assets" / "faces"
USERS = {"admin": ("admin", secrets.token_urlsafe(12)), "viewer": ("viewer", secrets.token_urlsafe(12))}


@dataclass
class Demo:
    settings: Settings
    labels: dict
    sample_dir: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """A slice of the demo sample (its real people in its videos) through the whole chain, in-process."""
    from adpipeline.demo.sample import generate_sample
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.stages.chain import run_direct
    from adpipeline.window import Window

    root = tmp_path_factory.mktemp("live")
    manifest = generate_sample(root / "sample", start=START, days=3, n_images=10, n_videos=4)
    settings = Settings(home=root / "home", allow_local_paths=True, local_media_roots=[root / "sample"])
    load_ads_csv(settings, manifest.raw_ads_csv)
    run_direct(settings, Window(manifest.start, manifest.end))
    return Demo(settings, json.loads(manifest.labels_path.read_text()), root / "sample")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(demo: Demo, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``airflow api-server`` with the repo's plugins folder, the simple auth manager and two users."""
    folder = tmp_path_factory.mktemp("api-server")
    passwords = folder / "passwords.json"
    passwords.write_text(json.dumps({name: pw for name, pw in USERS.values()}))
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "ADP_HOME": str(demo.settings.home),
        "ADP_ALLOW_LOCAL_PATHS": "true",
        "ADP_LOCAL_MEDIA_ROOTS": json.dumps([str(demo.settings.home.parent / "sample")]),
    }
    log = (folder / "api-server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so teardown ends uvicorn's worker too
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"api-server exited: {(folder / 'api-server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"api-server not up: {(folder / 'api-server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _token(base: str, user: str) -> str:
    name, password = USERS[user]
    response = httpx.post(f"{base}/auth/token", json={"username": name, "password": password}, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


def test_airflow_auth_guards_every_route(server: str) -> None:
    for path in (
        "/insights/faces",
        "/insights/duplicates",
        "/insights/features",
        "/insights/fatigue",
        "/insights/spend",
        "/insights/verify",
        "/insights/api/faces",
        "/insights/static/insights.css",
    ):
        assert httpx.get(server + path, timeout=60).status_code == 401, path
    viewer = {"Authorization": f"Bearer {_token(server, 'viewer')}"}
    assert httpx.get(f"{server}/insights/faces", headers=viewer, timeout=60).status_code == 200
    files = {"image": ("a.jpg", (ASSETS / "obama/obama2.jpg").read_bytes(), "image/jpeg")}
    assert httpx.post(f"{server}/insights/api/verify", files=files, timeout=60).status_code == 401
    assert httpx.post(f"{server}/insights/api/verify", files=files, headers=viewer, timeout=60).status_code == 403
    # the plugin is registered with the UI: an external view in the nav
    admin = {"Authorization": f"Bearer {_token(server, 'admin')}"}
    plugins = httpx.get(f"{server}/api/v2/plugins", headers=admin, timeout=60).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "adpipeline_insights")
    assert ours["external_views"][0]["href"] == "/insights/faces"


def test_page_in_a_real_browser(server: str, demo: Demo, tmp_path: Path) -> None:
    chromium = find_chromium()
    require_or_skip(
        chromium is not None,
        "no Chromium found (scripts/test.sh installs the Debian package 'chromium'; it could not here)",
    )
    assert chromium is not None
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(demo.settings) as wh:
        face_ids = set(wh.query("SELECT face_id FROM {{ faces }}")["face_id"])
    assert face_ids, "the demo slice should have faces"
    browser = Browser(chromium, tmp_path / "profile")
    try:
        browser.set_cookie(server + "/", "_token", _token(server, "admin"))

        # Faces: one row per demo face, each with its best crop loaded.
        browser.goto(f"{server}/insights/faces", "document.querySelectorAll('tr.face').length > 0")
        shown = browser.evaluate("[...document.querySelectorAll('tr.face')].map(r => r.dataset.faceId)")
        assert set(shown) == face_ids
        browser.wait_for("[...document.images].filter(i => i.classList.contains('crop')).every(i => i.complete)")
        crops = browser.evaluate(
            "[...document.querySelectorAll('img.crop')].map(i => [i.naturalWidth, i.naturalHeight])"
        )
        assert len(crops) == len(face_ids) and all(w > 20 and h > 20 for w, h in crops), crops
        assert browser.evaluate("document.querySelector('svg.chart circle') !== null")
        browser.screenshot(tmp_path / "faces.png")

        # Duplicates: groups with their thumbnails side by side, the canonical marked.
        browser.goto(f"{server}/insights/duplicates", "document.querySelectorAll('section.group').length > 0")
        browser.wait_for("[...document.querySelectorAll('section.group img')].every(i => i.complete)")
        sizes = browser.evaluate("[...document.querySelectorAll('section.group img')].map(i => i.naturalWidth)")
        assert len(sizes) >= 2 and all(w > 0 for w in sizes), sizes
        assert browser.evaluate("document.querySelectorAll('figure.canonical').length") == browser.evaluate(
            "document.querySelectorAll('section.group').length"
        )
        browser.screenshot(tmp_path / "duplicates.png")

        # Fatigue: every creative of the slice, each with its CTR chart, images with their thumbnail.
        browser.goto(f"{server}/insights/fatigue", "document.querySelector('#fatigue') !== null")
        browser.wait_for("[...document.querySelectorAll('#fatigue img')].every(i => i.complete)")
        n_rows = browser.evaluate("document.querySelectorAll('#fatigue tbody tr').length")
        assert n_rows > 0 and browser.evaluate("document.querySelectorAll('#fatigue svg.spark').length") == n_rows
        thumbs = browser.evaluate("[...document.querySelectorAll('#fatigue img')].map(i => i.naturalWidth)")
        assert thumbs and all(w > 0 for w in thumbs), thumbs
        browser.screenshot(tmp_path / "fatigue.png")

        # Features (adjusted beside unadjusted) and spend render.
        browser.goto(f"{server}/insights/features?feature=face", "document.querySelector('#feature-values') !== null")
        assert "Adjusted" in browser.evaluate("document.querySelector('#feature-values thead').textContent")
        browser.goto(f"{server}/insights/spend", "document.querySelector('h1') !== null")
        assert "Model spend" in browser.evaluate("document.querySelector('h1').textContent")

        # Inside the Airflow UI: the menu entry opens the page in the UI's frame.
        browser.goto(f"{server}/plugin/adpipeline-insights", "document.querySelector('iframe') !== null", timeout=120)
        assert browser.evaluate("document.querySelector('iframe').getAttribute('src')").endswith("/insights/faces")
        browser.wait_for(
            "(() => { const d = document.querySelector('iframe').contentDocument;"
            " return d && d.querySelectorAll('tr.face').length > 0; })()",
            timeout=120,
        )
        time.sleep(1)
        browser.screenshot(tmp_path / "airflow_ui.png")

        # Verify: a demo person's other photo against a demo video that shows them.
        person, video = _video_with(demo.labels, ("obama", "grace_hopper", "biden", "eileen_collins"))
        photo = {
            "obama": "obama/obama2.jpg",
            "grace_hopper": "grace_hopper/grace_hopper.jpg",
            "biden": "biden/biden.jpg",
            "eileen_collins": "eileen_collins/astronaut.jpg",
        }[person]
        browser.goto(f"{server}/insights/verify", "document.querySelector('form.verify') !== null")
        browser.set_files("input[name=image]", ASSETS / photo)
        browser.set_files("input[name=video]", demo.sample_dir / video)
        browser.evaluate("document.querySelector('#verify-submit').click()")
        verdict = browser.wait_for(
            "document.querySelector('#verify-verdict') && document.querySelector('#verify-verdict').textContent",
            timeout=300,
        )
        assert "Same person" in verdict, verdict
        browser.wait_for("document.querySelector('#best-frame') && document.querySelector('#best-frame').complete")
        assert browser.evaluate("document.querySelector('#best-frame').naturalWidth") > 100
        browser.screenshot(tmp_path / "verify.png")
        print(f"screenshots in {tmp_path}")
    finally:
        browser.close()


def _video_with(labels: dict, persons: tuple[str, ...]) -> tuple[str, str]:
    videos = labels["videos"]
    for person in persons:
        for path, video in sorted(videos.items()):
            if person in video["persons"]:
                return person, path
    raise AssertionError("no demo video shows a known person")
