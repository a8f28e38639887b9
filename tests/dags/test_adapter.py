"""The Airflow adapter: which dates the import takes, configuration errors failing at once, the failure alert."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from adpipeline.errors import ConfigurationError
from adpipeline.window import Window

pytestmark = pytest.mark.airflow

UTC = dt.UTC


def _ctx(**values):
    return {"params": {}, "triggering_asset_events": {}, **values}


def test_import_window_from_params_or_the_data_interval() -> None:
    from adpipeline.airflow_adapter import resolve_window

    assert resolve_window(_ctx(params={"start": "2026-10-02", "end": "2026-10-04"})) == Window.parse(
        "2026-10-02", "2026-10-04"
    )
    assert resolve_window(_ctx(params={"start": "2026-10-02", "end": None})) == Window.parse("2026-10-02")
    interval = {
        "data_interval_start": dt.datetime(2026, 10, 5, tzinfo=UTC),
        "data_interval_end": dt.datetime(2026, 10, 6, tzinfo=UTC),
    }
    assert resolve_window(_ctx(**interval)) == Window.parse("2026-10-05")


@pytest.mark.parametrize(
    "params",
    [{"start": None, "end": "2026-10-02"}, {"start": "2026-10-05", "end": "2026-10-01"}, {"start": "not-a-date"}],
)
def test_bad_trigger_params_are_configuration_errors(params) -> None:
    from adpipeline.airflow_adapter import resolve_window

    with pytest.raises(ConfigurationError):
        resolve_window(_ctx(params=params))


def test_a_manual_run_without_interval_or_params_fails_clearly() -> None:
    from adpipeline.airflow_adapter import resolve_window

    with pytest.raises(ConfigurationError, match="start"):
        resolve_window(_ctx(data_interval_start=None, data_interval_end=None))


def test_configuration_errors_fail_the_task_without_retries(adp_env, monkeypatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from adpipeline.airflow_adapter import run_stage
    from adpipeline.settings import get_settings

    context = _ctx(
        run_id="r1",
        dag=SimpleNamespace(dag_id="adp_media"),
        data_interval_start=dt.datetime(2026, 10, 5, tzinfo=UTC),
        data_interval_end=dt.datetime(2026, 10, 6, tzinfo=UTC),
    )

    def needs_a_model(ctx):
        raise ConfigurationError("ADP_INSIGHTFACE_MODEL_DIR has no det_10g.onnx")

    with pytest.raises(AirflowFailException, match="configuration error"):
        run_stage(needs_a_model, context)

    monkeypatch.setenv("ADP_FACE_SAMPLE_FPS", "-3")  # invalid setting: pydantic ValidationError
    get_settings.cache_clear()
    with pytest.raises(AirflowFailException, match="configuration error"):
        run_stage(lambda ctx: {}, context)
    monkeypatch.delenv("ADP_FACE_SAMPLE_FPS")
    get_settings.cache_clear()

    def flaky(ctx):
        raise TimeoutError("the service did not answer")

    with pytest.raises(TimeoutError):  # not a configuration error: Airflow's retries apply
        run_stage(flaky, context)


def test_downstream_stages_get_a_label_window_without_an_interval(adp_env) -> None:
    from adpipeline.airflow_adapter import run_stage

    run = SimpleNamespace(dag_id="adp_faces", run_after=dt.datetime(2026, 11, 3, 8, tzinfo=UTC), logical_date=None)
    got = run_stage(lambda ctx: ctx.window, _ctx(run_id="m", dag=SimpleNamespace(dag_id="adp_faces"), dag_run=run))
    assert got == Window.parse("2026-11-03")


def test_failure_callback_logs_one_line_and_posts_to_the_alert_connection(adp_env, monkeypatch, caplog) -> None:
    from adpipeline.airflow_adapter import notify_failure
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
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        monkeypatch.setenv("AIRFLOW_CONN_ADP_ALERTS", json.dumps({"conn_type": "http", "host": url}))
        monkeypatch.setenv("ADP_ALERT_CONN_ID", "adp_alerts")
        get_settings.cache_clear()
        ti = SimpleNamespace(dag_id="adp_media", task_id="fetch_and_analyse", map_index=3, try_number=2)
        with caplog.at_level("ERROR", logger="adpipeline"):
            notify_failure({"task_instance": ti, "run_id": "r9", "exception": ValueError("boom\nsecond line")})
    finally:
        server.shutdown()
    lines = [r.getMessage() for r in caplog.records if "task failed" in r.getMessage()]
    assert lines == ["adpipeline task failed: adp_media.fetch_and_analyse[3] run=r9 try=2: ValueError: boom"]
    assert received == [{"text": lines[0]}]
