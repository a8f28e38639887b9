"""The one module that knows Airflow: assets, default arguments, and turning a task context into a stage call.

DAG files import from here and from nothing else in ``adpipeline``; the stages themselves never import Airflow.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import Asset, Param
from airflow.timetables.interval import CronDataIntervalTimetable

from adpipeline.errors import ConfigurationError
from adpipeline.window import Window

log = logging.getLogger("adpipeline")

POOLS: dict[str, tuple[int, str]] = {
    "media_fetch": (4, "Bounds concurrent media-fetch tasks (external web servers)."),
    "genai_api": (2, "Bounds concurrent model-API tasks (Gemini / LangChain); match ADP_GENAI_POOL_SLOTS."),
}
"""The pools the DAGs use, with default slots: ``adpipeline airflow-init`` creates them (a task in a missing pool
would wait in Scheduled for ever, with an empty log)."""

ASSETS: dict[str, Asset] = {
    name: Asset(name=f"adpipeline.{name}", uri=f"adpipeline://warehouse/{name}", group="adpipeline")
    for name in ("creatives", "media", "features", "feature_batches", "faces", "gallery", "ads_enriched")
}


def notify_failure(context: Mapping[str, Any]) -> None:
    """Task failure callback: one log line that says what failed and why; also POSTed as JSON (``{"text": ...}``,
    the Slack/Teams/Chat webhook shape) to the URL of the Airflow connection ``ADP_ALERT_CONN_ID`` when set."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    reason = str(exc).strip().splitlines()[0][:300] if exc else "unknown error"
    where = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
    index = getattr(ti, "map_index", -1)
    if index is not None and index >= 0:
        where += f"[{index}]"
    line = (
        f"adpipeline task failed: {where} run={context.get('run_id')} try={getattr(ti, 'try_number', '?')}: "
        f"{type(exc).__name__ if exc else 'Error'}: {reason}"
    )
    log.error("%s", line)
    post_alert(line)


def post_alert(line: str) -> None:
    """POST one line as JSON (``{"text": ...}``) to the webhook URL of the Airflow connection ``ADP_ALERT_CONN_ID``
    when it is set (failures and run warnings); a problem sending it is logged, never raised."""
    try:
        from adpipeline.settings import get_settings

        conn_id = get_settings().alert_conn_id
    except Exception:  # noqa: BLE001 - a bad setting is what failed the task; the log line is enough
        return
    if not conn_id:
        return
    try:
        import httpx
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        url = str(conn.host) if (conn.host or "").startswith("http") else conn.get_uri()
        httpx.post(url, json={"text": line}, timeout=10).raise_for_status()
    except Exception as alert_exc:  # noqa: BLE001 - an alert that cannot be sent must not hide the failure
        log.warning("could not send the alert through connection %s: %s", conn_id, type(alert_exc).__name__)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": "adpipeline",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "on_failure_callback": notify_failure,
}
"""Retries are for flaky services; a configuration error fails at once (see :func:`run_stage`)."""


def dag_defaults(doc: str | None, *, params: dict[str, Param] | None = None) -> dict[str, Any]:
    """The DAG arguments every adpipeline DAG shares: start date, one run at a time, retries and the failure
    callback, tag, and the module docstring as ``doc_md``."""
    return {
        "start_date": start_date(),
        "max_active_runs": 1,
        "params": params or {},
        "default_args": DEFAULT_ARGS,
        "tags": ["adpipeline"],
        "doc_md": doc,
    }


def start_date() -> dt.datetime:
    """First logical date of the daily schedule (``ADP_SCHEDULE_START_DATE``, default 2026-10-01)."""
    return dt.datetime.combine(_schedule_settings()[0], dt.time(0), tzinfo=dt.UTC)


def catchup() -> bool:
    """Whether unpausing ``adp_import`` runs every missed day (``ADP_SCHEDULE_CATCHUP``, default off)."""
    return _schedule_settings()[1]


def _schedule_settings() -> tuple[dt.date, bool]:
    # Parsing a DAG file must not fail on an unrelated bad setting: fall back to the documented defaults and let
    # the tasks report the setting error when they run.
    try:
        from adpipeline.settings import get_settings

        s = get_settings()
        return s.schedule_start_date, s.schedule_catchup
    except Exception:  # noqa: BLE001
        return dt.date(2026, 10, 1), False


def daily() -> CronDataIntervalTimetable:
    """Daily runs whose data interval is the previous day (``[D, D+1)``)."""
    return CronDataIntervalTimetable("@daily", timezone="UTC")


def window_params() -> dict[str, Param]:
    """The import DAG's trigger form: a date range to import."""
    return {
        "start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="First date to import (YYYY-MM-DD). Empty: the run's own data interval (for a manual "
            "trigger, the day before its logical date).",
        ),
        "end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last date to import, inclusive. Empty: the same as start.",
        ),
    }


def resolve_window(context: Mapping[str, Any]) -> Window:
    """The dates the import works on: the ``start``/``end`` params of a manual trigger, else the run's data
    interval (scheduled runs and backfills). Downstream stages take whatever is pending instead; for them the
    window only labels the run (the triggering asset events' windows, else the data interval)."""
    params = context.get("params") or {}
    if params.get("end") and not params.get("start"):
        raise ConfigurationError("param end is set without start")
    if params.get("start"):
        try:
            return Window.parse(params["start"], params.get("end") or params["start"])
        except ValueError as exc:
            raise ConfigurationError(f"bad start/end params: {exc}") from exc
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
        raise ConfigurationError(
            "this run has no data interval: trigger adp_import with the start (and end) params, or backfill it"
        )
    return Window.from_interval(start, end)


def _stage_context(context: Mapping[str, Any], chunk: Mapping[str, Any] | None) -> Any:
    from adpipeline.settings import get_settings
    from adpipeline.stages.context import StageContext

    try:
        window = resolve_window(context)
    except ConfigurationError:
        if _dag_id(context) == "adp_import":
            raise
        window = _label_window(context)  # downstream stages take all pending work: the window is only a label
    run_id = str(context.get("run_id") or "manual")
    return StageContext(get_settings(), window, run_id=run_id, chunk=dict(chunk) if chunk else None)  # type: ignore[arg-type]


def _dag_id(context: Mapping[str, Any]) -> str:
    dag = context.get("dag")
    return str(getattr(dag, "dag_id", "") or getattr(context.get("dag_run"), "dag_id", ""))


def _label_window(context: Mapping[str, Any]) -> Window:
    run = context.get("dag_run")
    when = getattr(run, "run_after", None) or getattr(run, "logical_date", None) or context.get("logical_date")
    if when is None:
        raise ConfigurationError("this run has neither a data interval nor a run date")
    return Window(when.date(), when.date())


def _configuration_errors_fail_at_once(call: Callable[[], Any]) -> Any:
    from airflow.sdk.exceptions import AirflowFailException

    from adpipeline.errors import is_configuration_error

    try:
        return call()
    except Exception as exc:
        if is_configuration_error(exc):
            raise AirflowFailException(f"configuration error (not retried): {exc}") from exc
        raise


def run_stage(
    stage: Callable[[Any], Any],
    context: Mapping[str, Any],
    outlet: Asset | None = None,
    *,
    chunk: Mapping[str, Any] | None = None,
    **inputs: Any,
) -> Any:
    """Build the stage context for this task (``chunk``: a mapped task's share of the work; ``inputs``: upstream
    results the stage takes as keyword arguments, e.g. the mapped tasks' summaries), run the stage, and
    stamp the window and the stage's counts on the outlet asset event. A configuration error fails the task at
    once, without retries."""

    def call() -> Any:
        with _stage_context(context, chunk) as ctx:
            label = getattr(stage, "__module__", "") + "." + getattr(stage, "__name__", "")
            log.info("running %s for %s (run %s%s)", label, ctx.window, ctx.run_id, _chunk_label(chunk))
            result = stage(ctx, **inputs)
            for warning in ctx.warnings:  # many permanent failures: the task succeeds, the alert says so
                post_alert(warning)
            if outlet is not None:
                context["outlet_events"][outlet].extra = ctx.window.to_json()
            return result

    return _configuration_errors_fail_at_once(call)


def _chunk_label(chunk: Mapping[str, Any] | None) -> str:
    return f", {chunk['kind']} chunk of {len(chunk['ids'])}" if chunk else ""


BATCH_POLL = dt.timedelta(minutes=2)
"""How often the features DAG's sensor checks submitted batch jobs (it frees its worker slot in between)."""
BATCH_WAIT = dt.timedelta(hours=49)
"""How long the sensor waits in all; the collector itself gives up on a job after ``genai_batch_timeout_h``."""


def run_check(stage: Callable[[Any], bool], context: Mapping[str, Any], outlet: Asset | None) -> bool:
    """Sensor flavour of :func:`run_stage`: the stage answers whether the work is done; the outlet asset event
    (with the window) is stamped only then."""

    def call() -> bool:
        with _stage_context(context, None) as ctx:
            done = bool(stage(ctx))
            if done and outlet is not None:
                context["outlet_events"][outlet].extra = ctx.window.to_json()
            return done

    return _configuration_errors_fail_at_once(call)


def init_airflow(*, unpause: bool = True) -> list[str]:
    """Prepare an Airflow install for adpipeline (``adpipeline airflow-init``): create the missing pools of
    :data:`POOLS` (``genai_api`` with ``ADP_GENAI_POOL_SLOTS`` slots; existing pools keep their slots), parse the DAG
    folder into the metadata database, and unpause every ``adp_*`` DAG. Returns what it did, one line each."""
    from airflow.cli.cli_parser import get_parser
    from airflow.models.pool import Pool

    from adpipeline.settings import get_settings

    done = []
    slots = {"genai_api": get_settings().genai_pool_slots}
    for name, (default_slots, description) in POOLS.items():
        if Pool.get_pool(name) is None:
            Pool.create_or_update_pool(name, slots.get(name, default_slots), description, include_deferred=False)
            done.append(f"pool {name}: created with {slots.get(name, default_slots)} slots")
        else:
            done.append(f"pool {name}: exists, left as it is")
    parser = get_parser()
    args = parser.parse_args(["dags", "reserialize"])
    args.func(args)
    done.append("DAG folder parsed into the metadata database")
    if unpause:
        args = parser.parse_args(["dags", "unpause", "--treat-dag-id-as-regex", "^adp_", "--yes", "-o", "plain"])
        args.func(args)
        done.append("adp_* DAGs unpaused")
    return done


def missing_pools() -> list[str]:
    """The pools of :data:`POOLS` the Airflow metadata database lacks (``adpipeline check``)."""
    from airflow.models.pool import Pool

    return [name for name in POOLS if Pool.get_pool(name) is None]


def parse_dag_folder(dags_folder: str) -> tuple[list[str], dict[str, str]]:
    """(DAG ids, import errors by file) of a DAG folder, parsed the way the dag-processor does."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=dags_folder)
    return list(bag.dag_ids), {str(k): str(v) for k, v in bag.import_errors.items()}


CHAIN = ("adp_import", "adp_media", "adp_features", "adp_feature_batches", "adp_faces", "adp_gallery", "adp_final")
"""DAG ids in dependency order (what the asset schedule runs one after another; the gallery match before the final
rebuild, so ``ads_enriched`` carries the customers found)."""


def run_chain(
    window: Window,
    dags_folder: str,
    dag_ids: tuple[str, ...] = CHAIN,
    on_dag: Callable[[str, str, float], None] | None = None,
) -> list[tuple[str, str]]:
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
        # Only the import reads a window; the downstream DAGs take whatever is pending.
        started = time.monotonic()
        dag_run = dag.test(run_conf=window.to_json() if dag_id == "adp_import" else None)
        state = str(getattr(dag_run, "state", "unknown"))
        states.append((dag_id, state))
        if on_dag is not None:
            on_dag(dag_id, state, time.monotonic() - started)
        if state != "success":
            break
    return states
