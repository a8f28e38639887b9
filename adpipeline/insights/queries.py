"""What the insights page reads: paged queries over the warehouse (``sql/insights/*.sql``), returned as typed rows.

Every query is bounded (a page, a date range aggregated in the warehouse, or a fixed small group-by), so a page costs
the same on a warehouse with a million creatives as on the demo's. A table the pipeline has not written yet reads as
empty instead of failing the page.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field

from adpipeline.tables import TABLES, CreativeFatigue, FacePerformance, FeatureEffect, FeaturePerformance
from adpipeline.warehouse import Warehouse
from adpipeline.warehouse.base import sql_path
from adpipeline.warehouse.schema import _plain, columns

READ_TABLES = (
    "creatives",
    "image_hashes",
    "duplicate_groups",
    "genai_usage",
    "faces",
    "face_performance",
    "ads_enriched",
    "feature_performance",
    "customer_appearances",
    "creative_fatigue",
    "feature_effects",
    "face_detections",
)
FACE_FEATURE = "face"
FEATURE_LABELS: dict[str, str] = {
    "media_type": "Media type",
    "cta_kind": "Call to action",
    "promotion": "Promotion",
    "color": "Dominant colour",
    "has_text": "Text on the creative",
    "people": "People",
    "visual_style": "Visual style",
    "setting": "Setting",
    "product_category": "Product category",
    "language": "Language",
    "aspect": "Aspect ratio",
    "brand": "Brand",
    "face": "Face",
    "customer": "Customer (gallery)",
}


class Page(BaseModel):
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size


class FaceRow(FacePerformance):
    """One face on the faces page: its ``face_performance`` row (the bucket key of its crop left out of the JSON: the
    crop is served by face id) with the cost ratios, the ``feature_performance`` interval and flag, and the
    customers it was matched to."""

    best_crop_path: str | None = Field(None, exclude=True)
    cpc: float | None = None
    cpm: float | None = None
    ctr_estimate: float | None = None
    ctr_low: float | None = None
    ctr_high: float | None = None
    spend_weighted_ctr: float | None = None
    lift: float | None = None
    flag: str | None = None
    customers: list[str] = []

    @computed_field  # type: ignore[prop-decorator]
    @property
    def has_crop(self) -> bool:
        return self.best_crop_path is not None


class FaceBaseline(BaseModel):
    n_faces: int = 0
    baseline_ctr: float | None = None
    baseline_ads: int | None = None
    baseline_impressions: int | None = None
    baseline_stddev_ad_ctr: float | None = None


class DuplicateMember(BaseModel):
    creative_id: str
    is_canonical: bool
    hamming_to_canonical: int
    url: str | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None


class DuplicateGroupView(BaseModel):
    group_id: str
    group_size: int
    members: list[DuplicateMember]


class DuplicateSummary(BaseModel):
    n_groups: int = 0
    n_grouped: int = 0
    n_images: int = 0


class FeatureValueRow(FeaturePerformance):
    """A ``feature_performance`` row as the Features page shows it (the table's own model; the page's query may
    carry extra columns, which are ignored)."""

    model_config = ConfigDict(extra="ignore")


class FeatureOverview(BaseModel):
    feature: str
    n_values: int
    n_creative_values: int
    n_flagged: int


class FatigueRow(CreativeFatigue):
    """A ``creative_fatigue`` row with what the Fatigue tab shows beside it: the image's content hash (thumbnail), its
    URL, a face of the video (crop)."""

    sha256: str | None = None
    url: str | None = None
    face_id: str | None = None


class FatigueSummary(BaseModel):
    n_units: int = 0
    n_fitted: int = 0
    n_fatigued: int = 0
    pool_decay: float | None = None
    pool_spread: float | None = None
    overdispersion: float | None = None


class SpendTotals(BaseModel):
    """Calls, cost and tokens summed over some ``genai_usage`` rows (the spend page's groups)."""

    calls: int
    cost_usd: float
    text_tokens: int
    image_tokens: int
    video_tokens: int
    audio_tokens: int
    output_tokens: int


class SpendDayRow(SpendTotals):
    day: dt.date
    provider: str
    model: str
    failed_calls: int


class SpendModalityRow(SpendTotals):
    modality: str
    mode: str
    cached_tokens: int


class SpendRunRow(BaseModel):
    run_id: str
    modality: str
    first_call: dt.datetime
    calls: int
    cost_usd: float


class InsightsReader:
    """Read-only queries for the insights page over one warehouse connection (open it per request)."""

    def __init__(self, warehouse: Warehouse, known_tables: set[str] | None = None) -> None:
        self.wh = warehouse
        # Tables seen to exist (shared between requests: tables are never dropped, so each is looked up once).
        self.known_tables = known_tables if known_tables is not None else set()
        self._names: dict[str, str] | None = None

    # --- plumbing -------------------------------------------------------------------------------
    def names(self) -> dict[str, str]:
        """Template names: a table the page reads that does not exist yet reads as an empty, typed subquery."""
        if self._names is None:
            self._names = {}
            for name in READ_TABLES:
                if name in self.known_tables:
                    continue
                if self.wh.table_exists(name):
                    self.known_tables.add(name)
                else:
                    self._names[name] = _empty_table_sql(name)
        return self._names

    def has(self, table: str) -> bool:
        return table not in self.names()

    def _rows(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        frame = self.wh.query_file(f"insights/{name}", params, names=self.names())
        return [{k: _plain(v) for k, v in record.items()} for record in frame.to_dict("records")]

    # --- faces ----------------------------------------------------------------------------------
    def face_baseline(self) -> FaceBaseline:
        rows = self._rows("select_faces_summary")
        return (
            FaceBaseline.model_validate({k: v for k, v in rows[0].items() if v is not None}) if rows else FaceBaseline()
        )

    def faces(self, page: int, size: int) -> tuple[list[FaceRow], Page]:
        baseline = self.face_baseline()
        info = Page(number=page, size=size, total=baseline.n_faces)
        rows = [FaceRow.model_validate(r) for r in self._rows("select_faces_page", _paging(info))]
        if rows and self.has("customer_appearances"):
            by_face: dict[str, list[str]] = {}
            for r in self._rows("select_face_customers", {"face_ids": [row.face_id for row in rows]}):
                confidence = r["confidence_pct"]
                label = r["customer_id"] + (f" ({confidence:.0f} %)" if confidence is not None else "")
                by_face.setdefault(r["face_id"], []).append(label)
            for row in rows:
                row.customers = by_face.get(row.face_id, [])
        return rows, info

    def face_crop_uri(self, face_id: str) -> str | None:
        rows = self._rows("select_face_crop", {"face_id": face_id})
        return rows[0]["best_crop_path"] if rows else None

    # --- duplicates -----------------------------------------------------------------------------
    def duplicate_summary(self) -> DuplicateSummary:
        rows = self._rows("select_duplicate_summary")
        return DuplicateSummary.model_validate({k: v or 0 for k, v in rows[0].items()}) if rows else DuplicateSummary()

    def duplicate_groups(self, page: int, size: int) -> tuple[list[DuplicateGroupView], Page, DuplicateSummary]:
        summary = self.duplicate_summary()
        info = Page(number=page, size=size, total=summary.n_groups)
        groups: dict[str, DuplicateGroupView] = {}
        for r in self._rows("select_duplicate_groups_page", _paging(info)):
            group = groups.setdefault(
                r["group_id"], DuplicateGroupView(group_id=r["group_id"], group_size=r["group_size"], members=[])
            )
            group.members.append(DuplicateMember.model_validate(r))
        return list(groups.values()), info, summary

    # --- features -------------------------------------------------------------------------------
    def feature_overview(self) -> list[FeatureOverview]:
        return [FeatureOverview.model_validate(r) for r in self._rows("select_features_overview")]

    def ads_range(self) -> tuple[dt.date | None, dt.date | None]:
        rows = self._rows("select_ads_range")
        return (_as_date(rows[0]["first_day"]), _as_date(rows[0]["last_day"])) if rows else (None, None)

    def feature_values(
        self,
        feature: str,
        page: int,
        size: int,
        start: dt.date | None,
        end: dt.date | None,
        min_impressions: int,
    ) -> tuple[list[FeatureValueRow], Page]:
        """One feature's values, most impressions first. Without dates: the ``feature_performance`` table the final
        DAG rebuilt; with dates: the same SQL run for that range (aggregated in the warehouse)."""
        if start is None and end is None:
            source = self.wh.table_ref("feature_performance") if self.has("feature_performance") else None
            source = source or _empty_table_sql("feature_performance")
            params: dict[str, Any] = {}
        else:
            if not self.has("ads_enriched"):
                return [], Page(number=page, size=size, total=0)
            source = "(" + sql_path("final/select_feature_performance").read_text().strip().rstrip(";") + ")"
            params = {
                "start_date": start or dt.date(1, 1, 1),
                "end_date": end or dt.date(9999, 12, 31),
                "min_impressions": min_impressions,
            }
        params["feature"] = feature
        # One query: a feature has few values (faces, brands and customers the most), so the page is cut here.
        frame = self.wh.query(
            f"SELECT * FROM {source} AS fp WHERE fp.feature = @feature ORDER BY fp.impressions DESC, fp.value",
            params,
            names=self.names(),
        )
        records = frame.to_dict("records")
        info = Page(number=page, size=size, total=len(records))
        chosen = records[info.offset : info.offset + size]
        rows = [FeatureValueRow.model_validate({k: _plain(v) for k, v in r.items()}) for r in chosen]
        return rows, info

    def feature_effects(self, feature: str) -> dict[str, FeatureEffect]:
        """The adjusted effects of one feature's values, by value (empty before ``adp_final`` built them)."""
        return {
            r["value"]: FeatureEffect.model_validate(r)
            for r in self._rows("select_feature_effects", {"feature": feature})
        }

    # --- fatigue --------------------------------------------------------------------------------
    def fatigue_summary(self) -> FatigueSummary:
        rows = self._rows("select_fatigue_summary")
        return (
            FatigueSummary.model_validate({k: v for k, v in rows[0].items() if v is not None})
            if rows
            else FatigueSummary()
        )

    def fatigue(
        self, page: int, size: int, only_fatigued: bool = False
    ) -> tuple[list[FatigueRow], Page, FatigueSummary]:
        """One page of creatives, flagged first, then by CTR lost."""
        summary = self.fatigue_summary()
        total = summary.n_fatigued if only_fatigued else summary.n_units
        info = Page(number=page, size=size, total=total)
        params = {**_paging(info), "only_fatigued": only_fatigued}
        rows = [FatigueRow.model_validate(r) for r in self._rows("select_fatigue_page", params)]
        return rows, info, summary

    # --- spend ----------------------------------------------------------------------------------
    def spend_range(self) -> tuple[dt.date | None, dt.date | None]:
        rows = self._rows("select_spend_range")
        return (_as_date(rows[0]["first_day"]), _as_date(rows[0]["last_day"])) if rows else (None, None)

    def spend(
        self, start: dt.date, end: dt.date
    ) -> tuple[list[SpendDayRow], list[SpendModalityRow], list[SpendRunRow]]:
        params = {"start_date": start, "end_date": end}
        days = [SpendDayRow.model_validate(r) for r in self._rows("select_spend_by_day", {**params, "limit": 500})]
        modalities = [SpendModalityRow.model_validate(r) for r in self._rows("select_spend_by_modality", params)]
        runs = [SpendRunRow.model_validate(r) for r in self._rows("select_spend_by_run", {**params, "limit": 20})]
        return days, modalities, runs


def _paging(page: Page) -> dict[str, int]:
    return {"limit": page.size, "offset": page.offset}


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _empty_table_sql(table: str) -> str:
    """A typed subquery with a table's columns and no rows (BigQuery dialect)."""
    cols = []
    for c in columns(TABLES[table].model):
        sql_type = f"ARRAY<{c.bq_type}>" if c.repeated else c.bq_type
        cols.append(f"CAST(NULL AS {sql_type}) AS {c.name}")
    return f"(SELECT {', '.join(cols)} FROM UNNEST([1]) AS _ WHERE FALSE)"
