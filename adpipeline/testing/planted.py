"""Synthetic ``ads_enriched`` rows with planted effects, for the fatigue and feature-effects tests and bench.

What is planted (the truth comes back beside the rows):

- **decay**: a share of the creatives lose CTR log-linearly with the days they have been live
  (``CTR(t) = CTR(0) * exp(decay * t)``, decay drawn from ``decay_range``); the others keep a flat CTR;
- **a real effect**: the promotion ``discount`` multiplies CTR by ``discount_effect``, given to creatives at random;
- **a confounder**: the colour ``teal`` has no effect on CTR but is given mostly to creatives of the strong campaigns
  (which multiply CTR by ``strong_campaign_effect``), so unadjusted it looks like a lift;
- a noise feature (``cta_kind``), week effects, a per-creative CTR spread, daily noise beyond binomial, and duplicate
  groups (every tenth unit is shown by two creatives of one group, which must count once).

Creative ids are 32 hex digits, like the pipeline's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

START = dt.date(2026, 9, 7)  # a Monday
STRONG_CAMPAIGNS = ("retargeting", "loyalty")
WEAK_CAMPAIGNS = ("prospecting", "awareness", "new_arrivals")
WEEK_EFFECTS = (1.0, 1.05, 0.95, 1.1, 0.9, 1.0, 1.05, 0.95)


@dataclass(frozen=True)
class Planted:
    """The rows (``ads_enriched`` columns) and the truth per unit (canonical creative)."""

    ads: pd.DataFrame
    units: pd.DataFrame  # unit_id, decay, decays, discount, teal, campaign, level
    discount_effect: float
    strong_campaign_effect: float


def unit_id(i: int, seed: int) -> str:
    return hashlib.sha256(f"planted-{seed}-{i}".encode()).hexdigest()[:32]


def planted_ads(
    n_units: int = 600,
    days: int = 30,
    *,
    seed: int = 7,
    decaying_share: float = 0.5,
    decay_range: tuple[float, float] = (-0.06, -0.015),
    discount_effect: float = 1.3,
    strong_campaign_effect: float = 1.6,
    daily_noise: float = 0.1,
    base_ctr: float = 0.012,
    impressions_median: float = 4000.0,
    week_effects: tuple[float, ...] = WEEK_EFFECTS,
) -> Planted:
    """``n_units`` creatives, each live for ``days`` days from a start within the first two weeks."""
    rng = np.random.default_rng(seed)
    ids = np.array([unit_id(i, seed) for i in range(n_units)])
    strong = rng.random(n_units) < 0.4
    campaign = np.where(
        strong,
        rng.choice(STRONG_CAMPAIGNS, n_units),
        rng.choice(WEAK_CAMPAIGNS, n_units),
    )
    teal = rng.random(n_units) < np.where(strong, 0.7, 0.1)
    discount = rng.random(n_units) < 0.4
    cta = rng.choice(["shop_now", "learn_more", "sign_up"], n_units)
    decays = rng.random(n_units) < decaying_share
    decay = np.where(decays, rng.uniform(*decay_range, n_units), 0.0)
    level = np.exp(rng.normal(np.log(impressions_median), 0.9, n_units))
    unit_ctr = (
        base_ctr
        * np.where(discount, discount_effect, 1.0)
        * np.where(strong, strong_campaign_effect, 1.0)
        * np.exp(rng.normal(0, 0.15, n_units))
    )
    offset = rng.integers(0, 14, n_units)
    t = np.tile(np.arange(days), n_units)
    u = np.repeat(np.arange(n_units), days)
    date_index = offset[u] + t
    # Calendar effects by week, less their straight-line trend over the dates (a linear calendar trend cannot be told
    # from a common decay by any analysis of these data; only its bends can).
    all_dates = np.arange(int(date_index.max()) + 1)
    log_week = np.log(np.array(week_effects))[all_dates // 7 % len(week_effects)]
    log_week -= np.polyval(np.polyfit(all_dates, log_week, 1), all_dates)
    week_effect = np.exp(log_week)[date_index]
    n = np.maximum(1, np.round(level[u] * np.exp(rng.normal(0, 0.3, len(u))))).astype(np.int64)
    p = np.clip(unit_ctr[u] * np.exp(decay[u] * t) * week_effect * np.exp(rng.normal(0, daily_noise, len(u))), 0, 0.5)
    k = rng.binomial(n, p)
    dates = pd.to_datetime(START) + pd.to_timedelta(date_index, unit="D")
    ads = pd.DataFrame(
        {
            "ad_id": [f"ad_{i}" for i in ids[u]],
            "date": dates.date,
            "campaign": campaign[u],
            "media_type": "image",
            "creative_id": ids[u],
            "canonical_creative_id": ids[u],
            "duplicate_group_id": ids[u],
            "impressions": n,
            "clicks": k,
            "spend": n * 0.008,
            "conversions": 0,
            "n_faces": 0,
            "n_customers": 0,
            "cta_kind": cta[u],
            "promotions": [["discount"] if d else [] for d in discount[u]],
            "dominant_colors": [["teal", "white"] if c else ["white"] for c in teal[u]],
        }
    )
    # Every tenth unit is also shown by a near-duplicate creative of its group: split its impressions in two.
    dup = (u % 10 == 0) & (t % 2 == 1)
    ads.loc[dup, "creative_id"] = [unit_id(int(i), seed + 1) for i in u[dup]]
    ads.loc[dup, "ad_id"] = [f"ad_dup_{i}" for i in u[dup]]
    ads["ctr"] = ads["clicks"] / ads["impressions"]
    units = pd.DataFrame(
        {
            "unit_id": ids,
            "decay": decay,
            "decays": decays,
            "discount": discount,
            "teal": teal,
            "strong": strong,
            "campaign": campaign,
            "level": level,
        }
    )
    return Planted(ads, units, discount_effect, strong_campaign_effect)


def load_ads_enriched(wh: object, ads: pd.DataFrame) -> None:
    """Insert the rows into a DuckDB warehouse's ``ads_enriched`` (columns not given stay at their defaults)."""
    from adpipeline.warehouse.duckdb import DuckDBWarehouse

    if not isinstance(wh, DuckDBWarehouse):
        raise TypeError("load_ads_enriched writes a DuckDB warehouse; use merge_rows elsewhere")
    wh.ensure_tables(["ads_enriched"])
    frame = ads.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    cols = ", ".join(frame.columns)
    with wh.session() as con:
        con.register("planted_frame", frame)
        con.execute(f"INSERT INTO ads_enriched ({cols}) SELECT {cols} FROM planted_frame")
        con.unregister("planted_frame")
