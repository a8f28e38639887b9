"""The demo's performance rows: ads over the creatives, with daily impressions, clicks, spend and conversions that
carry the planted effects an analysis should find (the constants below; also written to labels.json)."""

from __future__ import annotations

import csv
import datetime as dt
import math
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


# --- ads and metrics ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Creative:
    file: str
    kind: str  # image | video
    discount: bool
    persons: tuple[str, ...]


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


def generate_ads(
    out_dir: Path, creatives: list[Creative], start: dt.date, days: int, seed: int
) -> tuple[list[dict[str, object]], int]:
    rng = np.random.default_rng([seed, 4])
    # Every creative gets one ad (videos two); a third of them get more ads that share the very same URL.
    ad_creatives: list[Creative] = list(creatives) + [c for c in creatives if c.kind == "video"]
    extra = rng.choice(len(creatives), size=max(1, len(creatives) // 3), replace=True)
    ad_creatives += [creatives[int(k)] for k in extra]
    rows: list[dict[str, object]] = []
    base = out_dir.resolve()
    for n, c in enumerate(ad_creatives):
        ad_id = f"ad_{n + 1:04d}"
        campaign = _campaign(c, rng)
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
            conversions = int(rng.binomial(clicks, min(0.5, ad_cvr * float(np.exp(rng.normal(0, 0.15))))))
            spend = round(imp * cpm / 1000 * float(np.exp(rng.normal(0, 0.05))), 2)
            rows.append(
                {
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
            )
    rows.sort(key=lambda r: (str(r["date"]), str(r["ad_id"])))
    return rows, len(ad_creatives)


CSV_COLUMNS = ("ad_id", "date", "campaign", "image_url", "video_url", "impressions", "clicks", "spend", "conversions")


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
