"""feature_performance against an independent computation, and when a value may be flagged."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd
import pytest

from adpipeline import tables as t
from adpipeline.stages.final import rebuild_feature_performance
from adpipeline.warehouse.duckdb import DuckDBWarehouse
from tests.insights.conftest import Seeded

Z = 1.959964


def overdispersion(units: list[tuple[float, float]]) -> float:
    """ANOVA moment estimate of the intra-class correlation of clicks over all creatives."""
    n_all = sum(n for n, _ in units)
    m = len(units)
    mu = sum(k for _, k in units) / n_all
    msb = sum(n * (k / n - mu) ** 2 for n, k in units) / (m - 1)
    msw = sum(k * (1 - k / n) for n, k in units) / (n_all - m)
    n0 = (n_all - sum(n * n for n, _ in units) / n_all) / (m - 1)
    return max(0.0, min(0.999, (msb - msw) / (msb + (n0 - 1) * msw)))


def expected_row(members: list[tuple[float, float]], others: list[tuple[float, float]]) -> dict[str, float]:
    """Beta-binomial weights n / (1 + (n - 1) rho), the weighted mean CTR, Wilson on the summed weights."""
    rho = overdispersion(members + others)

    def pooled(units: list[tuple[float, float]]) -> tuple[float, float]:
        weights = [n / (1 + (n - 1) * rho) for n, _ in units]
        return sum(w * k / n for w, (n, k) in zip(weights, units, strict=True)) / sum(weights), sum(weights)

    p, w = pooled(members)
    baseline, _ = pooled(others)
    centre = (p + Z**2 / (2 * w)) / (1 + Z**2 / w)
    half = Z * math.sqrt(p * (1 - p) / w + Z**2 / (4 * w**2)) / (1 + Z**2 / w)
    return {
        "ctr": sum(k for _, k in members) / sum(n for n, _ in members),
        "ctr_estimate": p,
        "ctr_low": max(0.0, centre - half),
        "ctr_high": min(1.0, centre + half),
        "effective_impressions": w,
        "overdispersion": rho,
        "baseline_ctr": baseline,
        "lift": p / baseline - 1,
    }


def test_matches_an_independent_computation(seeded: Seeded) -> None:
    wh = DuckDBWarehouse(seeded.settings.resolved_duckdb_path)
    try:
        got = wh.read_table("feature_performance", "feature, value")
        ads = wh.read_table("ads_enriched")
    finally:
        wh.close()
    ads["unit"] = ads["canonical_creative_id"].fillna(ads["creative_id"])
    units = ads.groupby("unit").agg(n=("impressions", "sum"), k=("clicks", "sum"))
    colours = ads.groupby("unit")["dominant_colors"].first()
    checked = 0
    for _, row in got.iterrows():
        if row["feature"] != "color":
            continue
        members = [u for u, cs in colours.items() if row["value"] in list(cs)]
        pairs = [(float(units.loc[u, "n"]), float(units.loc[u, "k"])) for u in members]
        rest = [(float(units.loc[u, "n"]), float(units.loc[u, "k"])) for u in units.index if u not in members]
        for key, value in expected_row(pairs, rest).items():
            assert row[key] == pytest.approx(value, rel=1e-6), (row["value"], key)
        assert row["n_creatives"] == len(members)
        checked += 1
    assert checked == 3
    # the duplicate group img0/img1/img2 counts once (its canonical), and faces come per face
    faces = got[got["feature"] == "face"].set_index("value")
    assert faces.loc["face_a", "n_creatives"] == 1 and faces.loc["face_a", "impressions"] == 20_000
    assert got[(got["feature"] == "media_type") & (got["value"] == "image")]["n_creatives"].item() == 3


def _ads(unit_rates: dict[str, tuple[int, float]], feature_units: set[str]) -> list[t.AdEnriched]:
    rows = []
    for unit, (impressions, rate) in unit_rates.items():
        rows.append(
            t.AdEnriched(
                ad_id=f"ad_{unit}",
                date=dt.date(2026, 10, 1),
                creative_id=unit,
                canonical_creative_id=unit,
                impressions=impressions,
                clicks=round(impressions * rate),
                cta_kind="shop_now" if unit in feature_units else "learn_more",
            )
        )
    return rows


def _flags(tmp_path: Path, rows: list[t.AdEnriched], min_impressions: int) -> pd.DataFrame:
    wh = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        wh.ensure_tables(["ads_enriched"])
        wh.merge_rows("ads_enriched", rows)
        rebuild_feature_performance(wh, min_impressions)
        frame = wh.read_table("feature_performance").set_index("value")
        return frame.astype(object).where(frame.notna(), None)
    finally:
        wh.close()


def test_one_big_creative_does_not_decide_a_value(tmp_path: Path) -> None:
    # One huge creative at 5 % and three ordinary ones at 1 % show the value; the rest are at 1-1.2 %. Clicks over
    # impressions say 4.9 % (a plain binomial interval would be razor-thin and flag it); pooled per creative it is 2 %.
    with_value = {"big": (2_000_000, 0.05)} | {f"s{i}": (10_000, 0.01) for i in range(3)}
    rest = {f"c{i}": (10_000, 0.01 + 0.001 * (i % 3)) for i in range(20)}
    got = _flags(tmp_path, _ads(with_value | rest, set(with_value)), 1000)
    assert got.loc["shop_now", "ctr"] == pytest.approx(0.0494, abs=1e-4)
    assert got.loc["shop_now", "ctr_estimate"] == pytest.approx(0.020, abs=1e-3)
    assert got.loc["shop_now", "ctr_low"] < got.loc["shop_now", "baseline_ctr"] < got.loc["shop_now", "ctr_high"]
    assert got.loc["shop_now", "flag"] is None
    # a value shown by one creative only is never flagged, however clear
    alone = _flags(tmp_path / "alone", _ads({"big": (2_000_000, 0.05)} | rest, {"big"}), 1000)
    assert alone.loc["shop_now", "n_creatives"] == 1 and alone.loc["shop_now", "flag"] is None


def test_a_consistent_effect_is_flagged_and_a_noisy_one_is_not(tmp_path: Path) -> None:
    consistent = {f"a{i}": (10_000, 0.03 + 0.001 * (i % 3)) for i in range(6)}
    others = {f"b{i}": (10_000, 0.01 + 0.001 * (i % 3)) for i in range(6)}
    got = _flags(tmp_path / "1", _ads(consistent | others, set(consistent)), 1000)
    assert got.loc["shop_now", "flag"] == "above" and got.loc["learn_more", "flag"] == "below"
    # Same pooled CTR, but the creatives disagree wildly: the interval widens past the baseline.
    noisy = {"a0": (10_000, 0.10), "a1": (10_000, 0.0), "a2": (10_000, 0.0), "a3": (10_000, 0.0)}
    got = _flags(tmp_path / "2", _ads(noisy | others, set(noisy)), 1000)
    assert got.loc["shop_now", "ctr_low"] < got.loc["shop_now", "baseline_ctr"]
    assert got.loc["shop_now", "flag"] is None


def test_min_impressions_gate(tmp_path: Path) -> None:
    consistent = {f"a{i}": (1_000, 0.05) for i in range(6)}
    others = {f"b{i}": (1_000, 0.01) for i in range(6)}
    assert _flags(tmp_path / "1", _ads(consistent | others, set(consistent)), 1000).loc["shop_now", "flag"] == "above"
    assert _flags(tmp_path / "2", _ads(consistent | others, set(consistent)), 7000).loc["shop_now", "flag"] is None


def test_one_feature_for_a_date_range_equals_the_table(seeded: Seeded) -> None:
    """The page runs the same SQL for one feature and a date range; over all the dates it gives the table's rows."""
    from adpipeline.insights.queries import InsightsReader

    wh = DuckDBWarehouse(seeded.settings.resolved_duckdb_path)
    try:
        reader = InsightsReader(wh)
        for feature in ("color", "face", "media_type", "cta_kind"):
            table, _ = reader.feature_values(feature, 1, 100, None, None, 1000)
            ranged, info = reader.feature_values(feature, 1, 100, dt.date(2026, 10, 1), dt.date(2026, 10, 2), 1000)
            assert info.total == len(table) > 0
            for a, b in zip(table, ranged, strict=True):
                for key, value in a.model_dump().items():
                    other = b.model_dump()[key]
                    assert other == (pytest.approx(value) if isinstance(value, float) else value), (feature, key)
    finally:
        wh.close()
