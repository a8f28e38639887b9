"""The final tables equal a rebuild from the current upstream tables after every final run, whatever order the
upstream stages ran in (issue 22: ads_enriched stayed stale when the final ran before the last features run).

"A rebuild" is the final stage run on a copy of the warehouse whose final tables were dropped
(:func:`tests.e2e.support.stale_tables`); contents are compared row by row, not by count."""

from __future__ import annotations

import datetime as dt

import pytest

from adpipeline.stages import faces, features, final, ingest, media
from adpipeline.stages.context import StageContext
from adpipeline.window import Window
from tests.e2e.support import START, load_sample, make_settings, stale_tables

pytestmark = pytest.mark.slow

DAY = dt.timedelta(days=1)


def test_final_before_the_last_features_run_is_healed(small_sample, tmp_path) -> None:
    settings = make_settings(tmp_path / "home", small_sample.out_dir)
    load_sample(settings, small_sample)
    scratch = tmp_path / "rebuild"
    with StageContext(settings, Window(START, START + 2 * DAY), run_id="r1") as ctx:
        ingest.run(ctx)
        media.fetch(ctx)
        media.analyse(ctx)
        media.group(ctx)
        faces.detect(ctx)
        faces.cluster(ctx)
        faces.performance(ctx)
        # The order of the issue: the final runs (on the faces event) while the features run is still going.
        first = final.run(ctx)
        assert first["skipped"] is False and first["n_rows"] > 0
        assert stale_tables(settings, scratch) == {}
        features.images(ctx)
        features.videos(ctx)

    # The features run finished after the final: the final tables are stale now (what the issue saw) ...
    stale = stale_tables(settings, scratch)
    assert stale.get("ads_enriched", 0) > 0, stale

    # ... and the final run its features event queues makes them equal a rebuild again.
    with StageContext(settings, Window(START, START + 2 * DAY), run_id="r2") as ctx:
        healed = final.run(ctx)
    assert healed["skipped"] is False and healed["partitions_replaced"] > 0
    assert stale_tables(settings, scratch) == {}

    # More events with nothing new: the watermark ends the run before any comparison.
    with StageContext(settings, Window(START, START), run_id="r3") as ctx:
        assert final.run(ctx)["skipped"] is True
        assert final.run(ctx)["skipped"] is True


def test_a_change_no_fact_column_shows_is_caught(small_sample, tmp_path) -> None:
    """A late correction of one source row's metrics (same row count, same creative facts) replaces exactly that
    date's partition; the other dates are left as they are."""
    settings = make_settings(tmp_path / "home", small_sample.out_dir)
    load_sample(settings, small_sample)
    window = Window(START, START + 2 * DAY)
    from adpipeline.stages.chain import run_direct

    run_direct(settings, window)
    with StageContext(settings, window, run_id="again") as ctx:
        assert final.run(ctx)["skipped"] is True
        wh = ctx.warehouse
        target = wh.query(
            "SELECT ad_id, date FROM {{ raw_ads }} WHERE date = @d ORDER BY ad_id LIMIT 1", {"d": START + DAY}
        )
        assert len(target) == 1
        wh.query(
            "UPDATE {{ raw_ads }} SET impressions = impressions + 1000, clicks = clicks + 7 "
            "WHERE ad_id = @ad AND date = @d",
            {"ad": str(target.iloc[0]["ad_id"]), "d": START + DAY},
        )
    assert set(stale_tables(settings, tmp_path / "rebuild")) >= {"ads_enriched", "feature_performance"}
    # A final run labelled with another day: the corrected date is found by its content, not by the window.
    with StageContext(settings, Window(START, START), run_id="late-load") as ctx:
        result = final.run(ctx)
    assert result["skipped"] is False and result["partitions_replaced"] == 1
    assert stale_tables(settings, tmp_path / "rebuild") == {}


def test_final_before_anything_was_imported(tmp_path) -> None:
    """Any upstream event runs the final, also an import that found nothing (the scheduled run unpausing adds):
    empty tables are no error, and the next run with nothing new is skipped."""
    settings = make_settings(tmp_path / "home")
    with StageContext(settings, Window(START, START), run_id="empty") as ctx:
        ctx.warehouse.ensure_tables(["raw_ads"])
        first = final.run(ctx)
        assert first["skipped"] is False and first["n_rows"] == first["n_expected"] == 0
        assert final.run(ctx)["skipped"] is True
