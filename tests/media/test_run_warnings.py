"""A day where most items fail for a permanent reason succeeds, but says so: a log line, a run_warnings row that
``adpipeline summary`` shows, and a post to the alert connection."""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from adpipeline.report import print_summary
from adpipeline.settings import Settings
from adpipeline.stages import media
from adpipeline.stages.context import StageContext
from adpipeline.stages.ingest import creative_id
from adpipeline.tables import Creative
from adpipeline.window import Window

DAY = dt.date(2026, 10, 1)


def _blocked_day(ctx: StageContext, root: Path, n: int) -> None:
    rows = []
    for i in range(n):
        url = f"/etc/adpipeline-not-a-root/{i}.jpg"  # outside the local media roots: blocked_path, permanent
        rows.append(
            Creative(
                creative_id=creative_id(url, "image"),
                url=url,
                media_type="image",
                first_seen_date=DAY,
                last_seen_date=DAY,
            )
        )
    ctx.warehouse.ensure_tables(media.MEDIA_TABLES)
    ctx.warehouse.merge_rows("creatives", rows)


def test_every_item_blocked_warns_and_the_run_succeeds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "media"
    root.mkdir()
    settings = Settings(_env_file=None, home=tmp_path / "home", allow_local_paths=True, local_media_roots=[root])  # type: ignore[call-arg]
    with StageContext(settings, Window(DAY, DAY), run_id="r-blocked") as ctx:
        _blocked_day(ctx, root, 18)
        with caplog.at_level("WARNING", logger="adpipeline"):
            result = media.fetch(ctx)  # no exception: permanent failures never fail the task
        assert result["by_status"] == {"blocked_path": 18}
        assert "18 of 18 items failed for a permanent reason (18 blocked_path)" in result["warning"]
        assert ctx.warnings == [result["warning"]]
        assert any(r.getMessage() == result["warning"] for r in caplog.records)
        rows = ctx.warehouse.query("SELECT run_id, stage, failed, total, statuses_json FROM {{ run_warnings }}")
    assert rows.to_dict("records") == [
        {
            "run_id": "r-blocked",
            "stage": "media.fetch",
            "failed": 18,
            "total": 18,
            "statuses_json": '{"blocked_path": 18}',
        }
    ]
    out = io.StringIO()
    print_summary(settings, Console(file=out, width=200))
    assert "warning" in out.getvalue() and "18 of 18 items failed for a permanent reason" in out.getvalue()


def test_below_the_share_no_warning(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        home=tmp_path / "home",
        allow_local_paths=True,
        local_media_roots=[root],
        permanent_failure_warn_share=1.0,
    )
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        _blocked_day(ctx, root, 3)
        assert "warning" not in media.fetch(ctx)
        assert not ctx.warehouse.table_exists("run_warnings")


@pytest.mark.airflow
def test_the_warning_is_posted_to_the_alert_connection(tmp_path: Path, adp_env, monkeypatch) -> None:
    from adpipeline.airflow_adapter import run_stage
    from adpipeline.settings import get_settings

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = tmp_path / "media"
    root.mkdir()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        monkeypatch.setenv("AIRFLOW_CONN_ADP_ALERTS", json.dumps({"conn_type": "http", "host": url}))
        monkeypatch.setenv("ADP_ALERT_CONN_ID", "adp_alerts")
        monkeypatch.setenv("ADP_LOCAL_MEDIA_ROOTS", json.dumps([str(root)]))
        get_settings.cache_clear()
        with StageContext(get_settings(), Window(DAY, DAY)) as ctx:
            _blocked_day(ctx, root, 4)
        context = {
            "params": {},
            "triggering_asset_events": {},
            "run_id": "r-alert",
            "dag": SimpleNamespace(dag_id="adp_media"),
            "data_interval_start": dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
            "data_interval_end": dt.datetime(2026, 10, 2, tzinfo=dt.UTC),
        }
        result = run_stage(media.fetch, context)
    finally:
        server.shutdown()
    assert result["by_status"] == {"blocked_path": 4}
    assert received == [{"text": result["warning"]}]
    assert "run r-alert" in received[0]["text"]
