"""creative_fatigue and feature_effects on synthetic ads with planted effects (adpipeline/testing/planted.py).

Decays are recovered within their 95 % intervals, creatives without decay are not flagged, the real feature effect is
found within its interval, and a feature that only rides on strong campaigns lifts unadjusted but not adjusted.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adpipeline.insights.effects import disagreement, unit_cut
from adpipeline.stages.final import rebuild_creative_fatigue, rebuild_feature_effects, rebuild_feature_performance
from adpipeline.testing.planted import Planted, load_ads_enriched, planted_ads
from adpipeline.warehouse.duckdb import DuckDBWarehouse

MIN_IMPRESSIONS = 5000
MIN_DROP = 0.2


def _warehouse(tmp_path: Path, planted: Planted) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(tmp_path / "planted.duckdb")
    load_ads_enriched(wh, planted.ads)
    return wh


def _fatigue(tmp_path: Path, planted: Planted) -> pd.DataFrame:
    wh = _warehouse(tmp_path, planted)
    rebuild_creative_fatigue(wh, MIN_DROP, MIN_IMPRESSIONS)
    got = wh.read_table("creative_fatigue")
    return got.merge(planted.units.rename(columns={"decay": "true_decay"}), on="unit_id", how="outer")


@pytest.mark.parametrize("seed", [7, 11])
def test_planted_decays_are_recovered_and_flat_creatives_not_flagged(tmp_path: Path, seed: int) -> None:
    planted = planted_ads(n_units=600, seed=seed, week_effects=(1.0,))
    got = _fatigue(tmp_path, planted)
    # A duplicate group counts once: one row per planted unit, with both creatives' impressions.
    assert len(got) == len(planted.units) and got["impressions"].notna().all()
    assert int(got["impressions"].sum()) == int(planted.ads["impressions"].sum())
    enough = got[(got["early_impressions"] >= MIN_IMPRESSIONS) & (got["recent_impressions"] >= MIN_IMPRESSIONS)]
    assert len(enough) >= 400
    covered = (enough["decay_low"] <= enough["true_decay"]) & (enough["true_decay"] <= enough["decay_high"])
    assert covered.mean() >= 0.90, covered.mean()
    flat = got[~got["decays"]]
    assert flat["fatigued"].mean() <= 0.05, flat["fatigued"].mean()
    # and the flag has power where the loss is large: most creatives losing 3 %/day or more (60 % in a month)
    steep = enough[enough["true_decay"] <= -0.03]
    assert steep["fatigued"].mean() >= 0.8, steep["fatigued"].mean()
    # the days to half follow the decay
    decaying = got[got["decay"] < 0]
    assert np.allclose(decaying["days_to_half"], math.log(2) / -decaying["decay"])


def test_few_impressions_are_shrunk_to_the_pool_and_never_flagged(tmp_path: Path) -> None:
    planted = planted_ads(n_units=400, seed=3, week_effects=(1.0,), impressions_median=300)
    got = _fatigue(tmp_path, planted)
    small = got[got["impressions"] < 20_000].dropna(subset=["raw_decay"])
    assert len(small) > 50
    # shrinkage: estimates move toward the pool, so their spread is smaller than the raw slopes'
    assert small["decay"].std() < small["raw_decay"].std()
    assert not small["fatigued"].any()


def test_calendar_effects_do_not_make_fatigue(tmp_path: Path) -> None:
    planted = planted_ads(n_units=600, seed=5, decaying_share=0.0)  # week effects on, no creative decays
    got = _fatigue(tmp_path, planted)
    assert got["fatigued"].mean() <= 0.05


def test_noiseless_decay_is_exact(tmp_path: Path) -> None:
    planted = planted_ads(
        n_units=60,
        seed=2,
        week_effects=(1.0,),
        daily_noise=0.0,
        impressions_median=2_000_000,
        decay_range=(-0.05, -0.05),
    )
    got = _fatigue(tmp_path, planted)
    big = got[got["impressions"] > 10_000_000]
    assert len(big) > 20
    assert np.allclose(big["raw_decay"], big["true_decay"], atol=0.002)
    row = big[big["decays"]].iloc[0]
    assert row["fatigued"] and row["ctr_change"] < -0.5
    assert row["days_live"] == 30 and list(row["day_index"]) == list(range(30))
    assert math.isclose(row["days_to_half"], math.log(2) / -row["decay"])


@pytest.fixture(scope="module")
def effects(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Planted]:
    planted = planted_ads(n_units=800, seed=13)  # week effects on
    wh = _warehouse(tmp_path_factory.mktemp("effects"), planted)
    rebuild_feature_performance(wh, 1000)
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=1_000_000, max_values=40)
    return wh.read_table("feature_effects"), planted


def _row(frame: pd.DataFrame, feature: str, value: str) -> pd.Series:
    rows = frame[(frame["feature"] == feature) & (frame["value"] == value)]
    assert len(rows) == 1, (feature, value)
    return rows.iloc[0]


def test_real_effect_is_recovered_within_its_interval(effects: tuple[pd.DataFrame, Planted]) -> None:
    frame, planted = effects
    row = _row(frame, "promotion", "discount")
    # Planted as a CTR ratio; at CTRs of 1-3 % the odds ratio is that ratio within half a percent.
    assert row["odds_ratio_low"] <= planted.discount_effect <= row["odds_ratio_high"]
    assert row["adjusted_flag"] == "above" and row["unadjusted_flag"] == "above"


def test_confounded_feature_lifts_unadjusted_but_not_adjusted(effects: tuple[pd.DataFrame, Planted]) -> None:
    frame, _ = effects
    row = _row(frame, "color", "teal")
    assert row["unadjusted_lift"] > 0.15 and row["unadjusted_flag"] == "above"
    assert row["odds_ratio_low"] <= 1 <= row["odds_ratio_high"]
    assert pd.isna(row["adjusted_flag"]) and row["disagreement"] == "significance"
    # white is on every creative: the intercept's, not a term
    assert frame[(frame["feature"] == "color") & (frame["value"] == "white")].empty


def test_effects_fit_on_a_sample_of_whole_creatives_above_the_cap(tmp_path: Path) -> None:
    planted = planted_ads(n_units=300, seed=17)
    wh = _warehouse(tmp_path, planted)
    rebuild_feature_performance(wh, 1000)
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=1_000_000, max_values=40)
    full = wh.read_table("feature_effects")
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=600, max_values=40)
    sampled = wh.read_table("feature_effects")
    assert full["model_creatives"].iloc[0] == 300
    assert 100 < sampled["model_creatives"].iloc[0] < 300 and sampled["model_cells"].iloc[0] <= 700
    # a rebuild replaces the rows (a value that left the model leaves the table)
    rebuild_feature_effects(wh, min_impressions=10**12, max_cells=1_000_000, max_values=40)
    assert wh.read_table("feature_effects").empty


def test_unit_cut_and_disagreement_rules() -> None:
    assert unit_cut(100, 1000) == ""
    assert unit_cut(2000, 1000) == "8000"
    assert disagreement(1.3, "above", 0.2, "above") is None
    assert disagreement(1.02, None, 0.3, "above") == "significance"
    assert disagreement(0.8, "below", 0.1, None) == "significance"
    assert disagreement(0.8, "below", 0.1, "above") == "sign"
    assert disagreement(0.9, None, 0.1, None) is None
    assert disagreement(None, None, 0.1, "above") is None


def test_values_that_always_go_together_are_left_out_not_fatal(tmp_path: Path) -> None:
    planted = planted_ads(n_units=200, seed=19)
    ads = planted.ads.copy()
    # the aspect ratio is the call to action in disguise: the two cannot be told apart
    ads["aspect_label"] = ads["cta_kind"].map({"shop_now": "1:1", "learn_more": "4:5", "sign_up": "9:16"})
    wh = _warehouse(tmp_path, Planted(ads, planted.units, planted.discount_effect, planted.strong_campaign_effect))
    rebuild_feature_performance(wh, 1000)
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=1_000_000, max_values=40)
    frame = wh.read_table("feature_effects")
    # each feature has two values besides its reference; together they carry two columns' worth, not four
    twins = frame[frame["feature"].isin(["aspect", "cta_kind"])]
    assert len(twins) == 2
    assert frame["odds_ratio_low"].notna().all()
    assert _row(frame, "promotion", "discount")["adjusted_flag"] == "above"


def test_report_writes_both_csvs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adpipeline.cli import app
    from adpipeline.settings import Settings

    settings = Settings(home=tmp_path / "home")
    planted = planted_ads(n_units=60, seed=23)
    wh = DuckDBWarehouse(settings.resolved_duckdb_path)
    load_ads_enriched(wh, planted.ads)
    rebuild_feature_performance(wh, 1000)
    rebuild_creative_fatigue(wh, MIN_DROP, MIN_IMPRESSIONS)
    rebuild_feature_effects(wh, min_impressions=1000, max_cells=1_000_000, max_values=40)
    runner = CliRunner()
    env = {"ADP_HOME": str(tmp_path / "home")}
    for what, rows in (("fatigue", 60), ("effects", len(wh.read_table("feature_effects")))):
        result = runner.invoke(app, ["report", what, "--out", str(tmp_path / "out")], env=env)
        assert result.exit_code == 0, result.output
        frame = pd.read_csv(tmp_path / "out" / f"{what}.csv")
        assert len(frame) == rows > 0
    fatigue = pd.read_csv(tmp_path / "out" / "fatigue.csv")
    assert fatigue["day_index"].iloc[0].startswith("0;1;2")
    assert runner.invoke(app, ["report", "nope"], env=env).exit_code != 0
