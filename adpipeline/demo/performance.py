"""The demo's performance rows: ads over the creatives, with daily impressions, clicks, spend and conversions that
carry the planted effects an analysis should find (the constants below; also written to labels.json)."""

from __future__ import annotations

import csv
import datetime as dt
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# --- the planted effects (also written to labels.json) ----------------------------------------------------------
BASE_CTR = {"image": 0.011, "video": 0.014}
BASE_CVR = 0.025
PERSON_CTR_MULTIPLIER = {"grace_hopper": 2.0, "obama": 1.2, "eileen_collins": 1.1, "biden": 1.0}
NO_FACE_VIDEO_CTR_MULTIPLIER = 0.6
DISCOUNT_CTR_MULTIPLIER = 1.15
DISCOUNT_CVR_MULTIPLIER = 2.0
CTR_RANGE = (0.003, 0.04)
IMPRESSIONS_RANGE = (500, 50_000)
# Creative fatigue: the creatives of these duplicate groups lose CTR log-linearly with the days since the group was
# first served; the others keep theirs.
FATIGUE_DECAY_PER_DAY = -0.07
FATIGUE_EVERY = 3  # one duplicate group in three (by a hash of its id) wears out
# A confounder: retargeting ads get a higher CTR, and the 4:5 banners are mostly put there (by a hash of the ad), though
# the format itself changes nothing: unadjusted it looks like a lift, adjusted for the campaign it does not.
STRONG_CAMPAIGN = "retargeting"
STRONG_CAMPAIGN_CTR_MULTIPLIER = 2.0
CONFOUNDED_ASPECT = "4:5"
CONFOUNDED_SHARE = 0.9  # of the confounded creatives' ads in the strong campaign


# --- ads and metrics ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Creative:
    file: str
    kind: str  # image | video
    discount: bool
    persons: tuple[str, ...]
    group: str = ""  # the duplicate group: an image's creative id in the labels, a video's file
    confounded: bool = False  # has the confounded feature (the 4:5 format)


def decays(group: str) -> bool:
    """Whether the creatives of this duplicate group wear out (a fixed hash of its id)."""
    return zlib.crc32(group.encode()) % FATIGUE_EVERY == 0


def _ctr_multiplier(c: Creative) -> float:
    m = DISCOUNT_CTR_MULTIPLIER if c.discount else 1.0
    if c.kind == "video":
        m *= max((PERSON_CTR_MULTIPLIER[p] for p in c.persons), default=NO_FACE_VIDEO_CTR_MULTIPLIER)
    return m


def _campaign(c: Creative, rng: np.random.Generator) -> str:
    if c.discount:
        return "autumn_sale"
    if c.kind == "video":
        return str(rng.choice(["brand_video", "brand_video", "prospecting"]))
    return str(rng.choice(["new_arrivals", "prospecting", "retargeting"]))


def _campaign_of(c: Creative, ad_id: str, drawn: str) -> str:
    # The confounder moves the ads of the confounded creatives by a hash, not by the generator, so every draw (and
    # every ad's dates) stays as it was without it.
    if c.confounded and zlib.crc32(f"confounder|{ad_id}".encode()) % 100 < round(100 * CONFOUNDED_SHARE):
        return STRONG_CAMPAIGN
    return drawn


def generate_ads(
    out_dir: Path, creatives: list[Creative], start: dt.date, days: int, seed: int
) -> tuple[list[dict[str, object]], int]:
    """The ads and their daily rows; returns (rows sorted by date and ad, number of ads).

    The schedule (which ads, their campaigns' draws, dates and impressions) and every row's CTR before the planted
    fatigue and strong campaign come from one generator, in the same order whatever is planted: the pipeline's day-by-
    day runs import the creatives a day's rows name, so moving a creative's first day changes what a backfill compares
    (a duplicate group's features come from whichever member was served first). Rows the planting changes draw their
    clicks and conversions again from a generator of their own (seeded by ad and day).
    """
    rng = np.random.default_rng([seed, 4])
    # Every creative gets one ad (videos two); a third of them get more ads that share the very same URL.
    ad_creatives: list[Creative] = list(creatives) + [c for c in creatives if c.kind == "video"]
    extra = rng.choice(len(creatives), size=max(1, len(creatives) // 3), replace=True)
    ad_creatives += [creatives[int(k)] for k in extra]
    drawn: list[tuple[int, Creative, int, dict[str, object], float, float]] = []  # ad, creative, day, row, ctr, cvr
    base = out_dir.resolve()
    for n, c in enumerate(ad_creatives):
        ad_id = f"ad_{n + 1:04d}"
        campaign = _campaign_of(c, ad_id, _campaign(c, rng))
        if n % 5 == 0:
            first, length = 0, days
        else:
            length = int(rng.integers(3, days + 1))
            first = int(rng.integers(0, days - length + 1))
        imp_level = float(np.exp(rng.normal(math.log(6000), 0.8)))
        ad_ctr = BASE_CTR[c.kind] * _ctr_multiplier(c) * float(np.exp(rng.normal(0, 0.12)))
        ad_cvr = BASE_CVR * (DISCOUNT_CVR_MULTIPLIER if c.discount else 1.0) * float(np.exp(rng.normal(0, 0.12)))
        cpm = float(rng.uniform(4.0, 12.0))
        url = str(base / c.file)
        for day in range(first, first + length):
            imp = int(np.clip(imp_level * np.exp(rng.normal(0, 0.25)), *IMPRESSIONS_RANGE))
            ctr = float(np.clip(ad_ctr * np.exp(rng.normal(0, 0.15)), *CTR_RANGE))
            clicks = int(rng.binomial(imp, ctr))
            cvr = min(0.5, ad_cvr * float(np.exp(rng.normal(0, 0.15))))
            conversions = int(rng.binomial(clicks, cvr))
            spend = round(imp * cpm / 1000 * float(np.exp(rng.normal(0, 0.05))), 2)
            row: dict[str, object] = {
                "ad_id": ad_id,
                "date": (start + dt.timedelta(days=day)).isoformat(),
                "campaign": campaign,
                "image_url": url if c.kind == "image" else "",
                "video_url": url if c.kind == "video" else "",
                "impressions": imp,
                "clicks": clicks,
                "spend": f"{spend:.2f}",
                "conversions": conversions,
            }
            drawn.append((n, c, day, row, ctr, cvr))

    first_day: dict[str, int] = {}
    for _, c, day, _, _, _ in drawn:
        group = c.group or c.file
        first_day[group] = min(first_day.get(group, day), day)
    rows = []
    for n, c, day, row, ctr, cvr in drawn:
        group = c.group or c.file
        planted = STRONG_CAMPAIGN_CTR_MULTIPLIER if row["campaign"] == STRONG_CAMPAIGN else 1.0
        if decays(group):
            planted *= math.exp(FATIGUE_DECAY_PER_DAY * (day - first_day[group]))
        if planted != 1.0:
            side = np.random.default_rng([seed, 6, n, day])
            clicks = int(side.binomial(int(str(row["impressions"])), float(np.clip(ctr * planted, *CTR_RANGE))))
            row["clicks"], row["conversions"] = clicks, int(side.binomial(clicks, cvr))
        rows.append(row)
    rows.sort(key=lambda r: (str(r["date"]), str(r["ad_id"])))
    return rows, len(ad_creatives)


CSV_COLUMNS = ("ad_id", "date", "campaign", "image_url", "video_url", "impressions", "clicks", "spend", "conversions")


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
