"""Two processes writing the DuckDB warehouse at once (two DAGs' tasks under a LocalExecutor) take turns on the
file: the second waits for the first instead of failing, and nothing written by either is lost."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from pathlib import Path

import duckdb
import pytest

from adpipeline.tables import Creative
from adpipeline.warehouse.duckdb import DuckDBWarehouse


def _writer(path: str, prefix: str, n: int, hold_s: float, ready, lock_wait_s: float = 60.0) -> None:
    wh = DuckDBWarehouse(path, lock_wait_s=lock_wait_s)
    day = dt.date(2026, 10, 1)
    for i in range(n):
        row = Creative(
            creative_id=f"{prefix}{i}",
            url=f"https://x/{prefix}{i}",
            media_type="image",
            first_seen_date=day,
            last_seen_date=day,
        )
        with wh.session():  # hold the file a while, as a long MERGE would
            wh.merge_rows("creatives", [row])
            if ready is not None and i == 0:
                ready.set()
            time.sleep(hold_s)


def test_two_processes_write_at_once_without_failing(tmp_path: Path) -> None:
    path = str(tmp_path / "w.duckdb")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    a = ctx.Process(target=_writer, args=(path, "a", 6, 0.3, ready))
    b = ctx.Process(target=_writer, args=(path, "b", 6, 0.3, None))
    a.start()
    assert ready.wait(60)
    b.start()  # starts while a holds the file
    a.join(120)
    b.join(120)
    assert a.exitcode == 0 and b.exitcode == 0
    ids = DuckDBWarehouse(path).query("SELECT creative_id FROM {{ creatives }} ORDER BY 1")["creative_id"].tolist()
    assert ids == [f"a{i}" for i in range(6)] + [f"b{i}" for i in range(6)]


def test_a_writer_gives_up_after_the_lock_wait(tmp_path: Path) -> None:
    path = str(tmp_path / "w.duckdb")
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_writer, args=(path, "a", 1, 5.0, ready))
    holder.start()
    try:
        assert ready.wait(60)
        started = time.monotonic()
        with pytest.raises(duckdb.IOException, match="(?i)lock"):
            DuckDBWarehouse(path, lock_wait_s=0.5).table_exists("creatives")
        assert time.monotonic() - started < 4.5
    finally:
        holder.join(60)


def test_the_warehouse_object_does_not_hold_the_file(tmp_path: Path) -> None:
    """A stage keeps its Warehouse for the whole task; between operations another process can open the file."""
    path = str(tmp_path / "w.duckdb")
    wh = DuckDBWarehouse(path)
    wh.ensure_tables(["creatives"])
    assert wh.table_exists("creatives")
    con = duckdb.connect(path)  # would raise if `wh` still had the file open (same process: shared instance)
    con.close()
    other = multiprocessing.get_context("spawn").Process(target=_writer, args=(path, "c", 1, 0.0, None, 1.0))
    other.start()
    other.join(60)
    assert other.exitcode == 0
