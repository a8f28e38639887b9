"""Fixtures for the real-scheduler tier: one sample, the in-process reference result, a migrated metadata database."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.e2e.support import START, load_sample, make_settings, table_checksums

DAYS = 5
"""Sample days: a 2-day manual trigger, then a 3-day backfill."""


@pytest.fixture(scope="session")
def sched_sample(tmp_path_factory: pytest.TempPathFactory):
    """A small sample with near-duplicate images and videos with faces (enough to exercise every table)."""
    from adpipeline.demo.sample import generate_sample

    n_images = int(os.environ.get("SCHEDULER_TEST_IMAGES", "12"))
    n_videos = int(os.environ.get("SCHEDULER_TEST_VIDEOS", "2"))
    return generate_sample(
        tmp_path_factory.mktemp("sched-sample"), start=START, days=DAYS, n_images=n_images, n_videos=n_videos
    )


@pytest.fixture(scope="session")
def reference(sched_sample, tmp_path_factory: pytest.TempPathFactory):
    """The in-process chain (``run_direct``) over the same five days: (home, checksums per table)."""
    from adpipeline.stages.chain import run_direct
    from adpipeline.window import Window

    home = tmp_path_factory.mktemp("sched-reference") / "home"
    settings = make_settings(home, sched_sample.out_dir)
    load_sample(settings, sched_sample)
    run_direct(settings, Window(START, START + dt.timedelta(days=DAYS - 1)))
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(settings) as wh:
        statuses = set(wh.read_table("media_fetches")["status"])
    assert statuses == {"ok"}, f"the reference run must fetch the whole sample: {statuses}"
    return home, table_checksums(settings, placeholder_for=str(home.resolve()))


@pytest.fixture(scope="session")
def airflow_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first cluster leaves a freshly migrated metadata database for the next ones to copy."""
    return tmp_path_factory.mktemp("sched-db") / "airflow.db"
