"""``adpipeline check``: what a deployer wants to know before the first run, each check one line.

Settings valid; the warehouse reachable with the configured credentials (and the source table there); the bucket
writable (a probe object written, read and deleted); the face model files present; the pools the DAGs use present in
the Airflow metadata database; the DAG folder parsing without errors. With ``bigquery_dry_run`` every
``adpipeline/sql`` file is also sent to BigQuery as a dry-run query job with its representative parameters
(:mod:`adpipeline.sql_params`): BigQuery itself says whether it accepts the SQL (the tests only prove the DuckDB
translation), and how many bytes it would scan. A dry run is free and runs nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adpipeline.warehouse.base import SQL_DIR


@dataclass
class Check:
    """One line of the report: what was checked, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str
    bytes_processed: int | None = None


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except Exception as exc:  # noqa: BLE001 - a pre-flight check reports every failure, whatever its type
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return Check(name, False, f"{type(exc).__name__}: {first}")


def run_checks(
    *,
    bigquery_dry_run: bool = False,
    airflow: bool = True,
    sql_files: list[Path] | None = None,
) -> Iterator[Check]:
    """Every check, in order, as it finishes. ``airflow``: also check the pools and the DAG folder (needs the
    Airflow metadata database of ``AIRFLOW_HOME``). ``sql_files``: the files to dry-run (default: all)."""
    from adpipeline.settings import get_settings

    get_settings.cache_clear()
    settings_check = _run("settings", lambda: _settings_line(get_settings()))
    yield settings_check
    if not settings_check.ok:
        return
    settings = get_settings()
    warehouse = _run("warehouse", lambda: _warehouse_line(settings))
    yield warehouse
    yield _run("bucket", lambda: _bucket_line(settings))
    yield _run("face model files", lambda: _model_line(settings))
    if airflow:
        yield _run("airflow pools", _pools_line)
        yield _run("DAG folder", _dags_line)
    if bigquery_dry_run:
        if settings.warehouse_backend != "bigquery":
            yield Check("bigquery dry run", False, "needs ADP_WAREHOUSE_BACKEND=bigquery")
        elif warehouse.ok:
            yield from dry_run_sql(settings, sql_files)


def _settings_line(settings: Any) -> str:
    return (
        f"warehouse {settings.warehouse_backend}, bucket {settings.resolved_bucket_url}, faces "
        f"{settings.face_backend}, features {settings.feature_provider}"
    )


def _warehouse_line(settings: Any) -> str:
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(settings) as wh:
        wh.query("SELECT 1 AS ok")
        where = (
            f"{settings.bq_project}.{settings.bq_dataset}" if wh.name == "bigquery" else settings.resolved_duckdb_path
        )
        source = settings.source_table
        found = "." in source or wh.table_exists(source)
    if not found:
        raise LookupError(f"reachable ({where}), but the source table {source!r} is not there")
    return f"{wh.name} {where}: a query ran; source table {source} found"


def _bucket_line(settings: Any) -> str:
    from adpipeline.bucket import Bucket

    bucket = Bucket.for_settings(settings)
    key = f"tmp/check/{uuid.uuid4().hex}"
    bucket.put_bytes(key, b"adpipeline check")
    try:
        if bucket.get_bytes(key) != b"adpipeline check":
            raise OSError("the probe object read back different bytes")
    finally:
        bucket.delete(key)
    return f"{bucket.url}: a probe object written, read and deleted"


def _model_line(settings: Any) -> str:
    from adpipeline.faces.engine import check_insightface_dir, dlib_model_dir

    if settings.face_backend == "insightface":
        return f"insightface buffalo_l files in {check_insightface_dir(settings.insightface_model_dir)}"
    folder = dlib_model_dir()
    files = sorted(p.name for p in Path(folder).glob("*.dat"))
    if not files:
        raise FileNotFoundError(f"no dlib model files (*.dat) in {folder}")
    return f"dlib: {', '.join(files)} in {folder}"


def _pools_line() -> str:
    from adpipeline.airflow_adapter import missing_pools

    missing = missing_pools()
    if missing:
        raise LookupError(f"missing pools {', '.join(missing)}: run `adpipeline airflow-init`")
    return "media_fetch, genai_api present"


def _dags_line() -> str:
    from adpipeline.airflow_adapter import parse_dag_folder
    from adpipeline.paths import DAGS

    dag_ids, errors = parse_dag_folder(str(DAGS))
    if errors:
        first = next(iter(errors.items()))
        raise SyntaxError(f"{len(errors)} file(s) fail to import, e.g. {first[0]}: {str(first[1]).splitlines()[-1]}")
    return f"{len(dag_ids)} DAGs parse: {', '.join(sorted(dag_ids))}"


def dry_run_sql(settings: Any, sql_files: list[Path] | None = None) -> Iterator[Check]:
    """Every SQL file as a BigQuery dry-run query job with its representative parameters: accepted or the error,
    and the bytes it would scan. Missing tables are created first (as the first run would), so the files can be
    checked against their real schemas."""
    from types import SimpleNamespace

    from google.cloud import bigquery

    from adpipeline.sql_params import file_params, used_params
    from adpipeline.stages.context import StageContext
    from adpipeline.warehouse import get_warehouse
    from adpipeline.warehouse.bigquery import BigQueryWarehouse, query_parameters

    with get_warehouse(settings) as wh:
        assert isinstance(wh, BigQueryWarehouse)
        wh.ensure_tables()
        names = StageContext.source_names(SimpleNamespace(settings=settings, warehouse=wh))  # type: ignore[arg-type]
        for path in sql_files or sorted(SQL_DIR.glob("**/*.sql")):
            label = str(path.relative_to(SQL_DIR)) if path.is_relative_to(SQL_DIR) else path.name

            def probe(path: Path = path) -> tuple[str, int]:
                sql = wh.render(path.read_text(), names)
                params = {k: v for k, v in file_params(path).items() if k in used_params(sql)}
                config = bigquery.QueryJobConfig(
                    dry_run=True, use_query_cache=False, query_parameters=query_parameters(params)
                )
                job = wh.client.query(sql, job_config=config, location=wh.location)
                scanned = int(job.total_bytes_processed or 0)
                return f"accepted; would scan {scanned:,} bytes", scanned

            try:
                detail, scanned = probe()
                yield Check(f"dry run {label}", True, detail, scanned)
            except Exception as exc:  # noqa: BLE001 - report the file BigQuery rejected, go on with the rest
                message = getattr(exc, "message", None) or str(exc)
                yield Check(f"dry run {label}", False, f"{type(exc).__name__}: {message.strip().splitlines()[0][:300]}")
