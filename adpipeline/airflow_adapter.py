"""The one module that knows Airflow: assets, default arguments, and turning a task context into a stage call.

DAG files import from here and from nothing else in ``adpipeline``; the stages themselves never import Airflow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import Asset, Param
from airflow.timetables.interval import CronDataIntervalTimetable

from adpipeline.window import Window

log = logging.getLogger("adpipeline")

START_DATE = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
"""Earliest logical date of the scheduled DAGs; backfill earlier dates with ``airflow backfill create``."""

ASSETS: dict[str, Asset] = {
    name: Asset(name=f"adpipeline.{name}", uri=f"adpipeline://warehouse/{name}", group="adpipeline")
    for name in ("creatives", "media", "features", "faces", "gallery", "ads_enriched")
}

POOLS = {
    "media_fetch": "Bounds concurrent media-fetch tasks (external web servers).",
    "genai_api": "Bounds concurrent model-API tasks (Gemini / LangChain).",
}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "adpipeline",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=2),
    "retry_exponential_backoff": True,
}


def dag_defaults(doc: str | None) -> dict[str, Any]:
    """The DAG arguments every adpipeline DAG shares: start date, one run at a time, the window Params, retries,
    tag, and the module docstring as ``doc_md``."""
    return {
        "start_date": START_DATE,
        "max_active_runs": 1,
        "params": window_params(),
        "default_args": DEFAULT_ARGS,
        "tags": ["adpipeline"],
        "doc_md": doc,
    }


def daily() -> CronDataIntervalTimetable:
    """Daily runs whose data interval is the previous day (``[D, D+1)``)."""
    return CronDataIntervalTimetable("@daily", timezone="UTC")


def window_params() -> dict[str, Param]:
    """UI trigger form: an explicit date range overrides the data interval / triggering asset events."""
    return {
        "start": Param(None, type=["null", "string"], format="date", description="First date (YYYY-MM-DD)."),
        "end": Param(None, type=["null", "string"], format="date", description="Last date, inclusive."),
    }


def resolve_window(context: Mapping[str, Any]) -> Window:
    """The dates a task works on, in this order of precedence:
    the ``start``/``end`` params of a manual trigger; the union of the windows carried by the triggering asset
    events (asset-scheduled DAGs); the run's data interval (time-scheduled DAGs and backfills)."""
    params = context.get("params") or {}
    if params.get("start"):
        return Window.parse(params["start"], params.get("end") or params["start"])
    window: Window | None = None
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            extra = getattr(event, "extra", None) or {}
            if "start" in extra and "end" in extra:
                got = Window.parse(extra["start"], extra["end"])
                window = got if window is None else window.union(got)
    if window is not None:
        return window
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is None or end is None:
        raise ValueError("no window: trigger with params start/end, or run on a schedule")
    return Window.from_interval(start, end)


def run_stage(stage: Callable[[Any], dict[str, Any]], context: Mapping[str, Any], outlet: Asset | None) -> dict:
    """Build the stage context for this task, run the stage, and stamp the window on the outlet asset event."""
    from adpipeline.settings import get_settings
    from adpipeline.stages.context import StageContext

    window = resolve_window(context)
    run_id = str(context.get("run_id") or "manual")
    log.info("running %s for %s (run %s)", getattr(stage, "__module__", stage), window, run_id)
    with StageContext(get_settings(), window, run_id=run_id) as ctx:
        result = stage(ctx)
    if outlet is not None:
        context["outlet_events"][outlet].extra = window.to_json()
    return result


BATCH_POLL = dt.timedelta(minutes=2)
"""How often the features DAG's sensor checks submitted batch jobs (it frees its worker slot in between)."""
BATCH_WAIT = dt.timedelta(hours=49)
"""How long the sensor waits in all; the collector itself gives up on a job after ``genai_batch_timeout_h``."""


def run_check(stage: Callable[[Any], bool], context: Mapping[str, Any], outlet: Asset | None) -> bool:
    """Sensor flavour of :func:`run_stage`: the stage answers whether the work is done; the outlet asset event
    (with the window) is stamped only then."""
    from adpipeline.settings import get_settings
    from adpipeline.stages.context import StageContext

    window = resolve_window(context)
    with StageContext(get_settings(), window, run_id=str(context.get("run_id") or "manual")) as ctx:
        done = bool(stage(ctx))
    if done and outlet is not None:
        context["outlet_events"][outlet].extra = window.to_json()
    return done


CHAIN = ("adp_import", "adp_media", "adp_features", "adp_faces", "adp_final")
"""DAG ids in dependency order (what the asset schedule runs one after another)."""


def run_chain(window: Window, dags_folder: str, dag_ids: tuple[str, ...] = CHAIN) -> list[tuple[str, str]]:
    """Run the DAG chain for one window through Airflow itself (``dag.test``: real task instances, XComs and asset
    events in the Airflow metadata database, no scheduler needed). Returns (dag_id, state) per DAG; stops at the
    first DAG that does not succeed."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    states = []
    for dag_id in dag_ids:
        dag = bag.get_dag(dag_id)
        if dag is None:
            raise KeyError(f"no DAG {dag_id} in {dags_folder}")
        dag_run = dag.test(run_conf=window.to_json())
        state = str(getattr(dag_run, "state", "unknown"))
        states.append((dag_id, state))
        if state != "success":
            break
    return states
