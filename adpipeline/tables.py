"""Row models: the single source of truth for every warehouse table.

Each table is a Pydantic model plus a :class:`TableSpec` (key columns, partition column, write verb). The warehouse
DDL, the load schema and the MERGE statements are all derived from these models; no schema is written twice.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adpipeline.faces.crops import CROP_PREFIX

COLUMN_DOCS: dict[str, str] = {
    "ad_id": "The ad's id in the source table.",
    "date": "The day the source row is for (UTC).",
    "campaign": "The campaign named in the source table.",
    "image_url": "The image creative's URL (https://, gs:// or a local path).",
    "video_url": "The video creative's URL (https://, gs:// or a local path).",
    "impressions": "Impressions (source metric).",
    "clicks": "Clicks (source metric).",
    "spend": "Spend in the account currency (source metric).",
    "conversions": "Conversions (source metric).",
    "creative_id": "Id of a distinct creative: sha256 of its URL and media type, first 32 hex.",
    "url": "The creative's URL as the source table names it.",
    "media_type": "image or video.",
    "first_seen_date": "First day an ad used the creative.",
    "last_seen_date": "Last day an ad used the creative.",
    "status": "ok, or why the item could not be processed (a per-item failure is a row, not a task failure).",
    "reason": "Details of a failure status (null when ok).",
    "sha256": "sha256 of the media bytes (content address in the bucket).",
    "blob_path": "Bucket key of the media bytes (blobs/sha256/...).",
    "width": "Width in pixels.",
    "height": "Height in pixels.",
    "aspect_ratio": "Width / height.",
    "orientation": "landscape, portrait or square.",
    "group_id": "Near-duplicate group: the images a person would call the same creative.",
    "canonical_creative_id": "The group's canonical image (its earliest creative): features are extracted for it.",
    "provider": "Feature extractor: offline, gemini or langchain.",
    "model": "The model that extracted the features (offline: the extractor's version).",
    "prompt_version": "Version of the feature questions (a change re-extracts).",
    "backend": "Face engine: dlib or insightface.",
    "model_id": "Face model id: embeddings of different models are never compared.",
    "face_id": "A unique face across all videos (stable across runs).",
    "track_id": "One face followed through one video.",
    "customer_id": "A customer of the gallery (the customer base's file or folder name).",
    "run_id": "The Airflow run (or CLI run) that wrote the row.",
    "duration_s": "Duration in seconds.",
    "fps": "Frames per second.",
    "n_ads": "Ads (distinct ad_id) counted.",
    "n_videos": "Videos counted.",
    "ctr": "Clicks / impressions.",
}
"""Descriptions of columns that many tables share; a field's own ``description`` wins. Together with the row
models' field descriptions and docstrings, the source of the BigQuery column and table descriptions and of
docs/tables.md."""


class Row(BaseModel):
    """Base of all row models: strict field set, no extras."""

    model_config = ConfigDict(extra="forbid")


# --- source ---------------------------------------------------------------------------------------
class RawAd(Row):
    """One ad on one day, as the source table holds it (the demo writes this table locally)."""

    ad_id: str
    date: dt.date
    campaign: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    impressions: int = 0
    clicks: int = 0
    spend: float = 0.0
    conversions: int = 0


# --- import ---------------------------------------------------------------------------------------
class Creative(Row):
    """One distinct creative URL. Key: creative_id (sha256 of the URL, first 32 hex)."""

    creative_id: str
    url: str
    media_type: Literal["image", "video"]
    first_seen_date: dt.date
    last_seen_date: dt.date


# --- media ----------------------------------------------------------------------------------------
class MediaFetch(Row):
    """Fetch status per creative: ``fetched`` (bytes stored, not analysed yet), ``ok`` (analysed, usable) or the
    reason it failed. Key: creative_id."""

    creative_id: str
    url: str
    media_type: Literal["image", "video"]
    status: str
    reason: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    blob_path: str | None = None
    attempts: int = 0
    failure_kind: Literal["transient", "permanent"] | None = Field(
        None, description="transient (retried by the next runs) or permanent (retried after a long back-off)."
    )
    failed_runs: int = Field(0, description="Runs in a row whose fetch or analysis of this creative failed.")
    next_attempt_at: dt.datetime | None = Field(None, description="A failed fetch is not tried again before this.")


class ImageHash(Row):
    """dHash and geometry of one fetched image. Key: creative_id."""

    creative_id: str
    sha256: str
    dhash: int = Field(description="64-bit dHash as a signed INT64 (two's complement).")
    dhash_hex: str
    width: int
    height: int
    aspect_ratio: float
    orientation: str
    aspect_label: str | None = None
    image_format: str | None = None
    fine_thumb: str | None = Field(
        None,
        description="Finer near-duplicate check: image inside any border as 128x128 luma + 64x64 Cb/Cr, zlib, base64 "
        "(about 4.5 KB on average; format thumb_format).",
    )
    is_animated: bool | None = None
    ocr_text: str | None = Field(
        None,
        description="Text lines for the near-duplicate check: JSON [[text, confidence, x0, y0, x1, y1], ...], boxes as "
        "shares of the image; null when the text check is off or for rows analysed before it existed.",
    )
    thumb_format: int | None = Field(
        None,
        description="Format of fine_thumb (media.dedupe.thumbnails.THUMB_FORMAT, now 3); null: written before the "
        "format was recorded (`adpipeline migrate-thumbs` checks those and re-analyses rows in an earlier format).",
    )


class DuplicateGroup(Row):
    """Near-duplicate membership. Key: creative_id. The canonical member is the group's earliest creative."""

    creative_id: str
    group_id: str
    canonical_creative_id: str
    hamming_to_canonical: int
    is_canonical: bool
    group_size: int
    component_id: str | None = Field(
        None,
        description="Connected component of confirmed near-duplicate pairs (grouping state: a new image joins the "
        "components it is confirmed against; groups are clustered inside one by average linkage).",
    )
    sha256: str | None = Field(None, description="The image bytes grouped (a changed image_hashes.sha256 regroups).")
    inner_dhash: int | None = Field(
        None, description="dHash of the image inside any frame (from fine_thumb), signed INT64: the grouping index."
    )
    text_key: int | None = Field(
        None,
        description="Hash of the image's tallest confident OCR line (media.text.text_key), INT64: images sharing it "
        "are candidates further apart in dHash. NULL without text, with the text check off, or grouped before it.",
    )


class VideoMetadata(Row):
    """Container/stream facts of one video, read without decoding it. Key: creative_id."""

    creative_id: str
    sha256: str | None = None
    status: str
    reason: str | None = None
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: float | None = None
    orientation: str | None = None
    codec: str | None = None
    bit_rate: int | None = None
    has_audio: bool | None = None
    audio_codec: str | None = None
    rotation: int | None = None


# --- features -------------------------------------------------------------------------------------
class FeatureRow(Row):
    """The columns both feature tables share, in their order: who extracted the row, then the features asked of
    images and videos alike. Not a table: :class:`ImageFeatureRow` and :class:`VideoFeatureRow` add their own.

    Columns mirror ``adpipeline.features.schema.FEATURES`` (a test keeps them in step). Null means "not known by
    this provider", never a guess; list columns are empty when unknown or absent.
    """

    creative_id: str
    provider: str
    model: str
    prompt_version: str
    status: str
    reason: str | None = None
    raw_response: str | None = Field(None, description="Model output kept when it failed validation.")
    product_type: str | None = None
    product_category: str | None = None
    brands: list[str] = Field(default_factory=list)
    has_logo: bool | None = None
    automotive_brand: str | None = None
    has_text: bool | None = None
    text: str | None = None
    language: str | None = None
    promotions: list[str] = Field(default_factory=list, description="Promotion kinds, in order of appearance.")
    discount_percent: float | None = Field(None, description="Largest percent discount offered.")
    discount_amount: float | None = Field(None, description="Largest money discount offered (currency as written).")
    promotion_texts: list[str] = Field(default_factory=list)
    call_to_action: str | None = None
    cta_kind: str | None = None
    visual_style: str | None = None
    people_count: int | None = None
    setting: str | None = None
    dominant_colors: list[str] = Field(default_factory=list)
    dominant_colors_hex: list[str] = Field(default_factory=list)
    brightness: float | None = None
    colorfulness: float | None = None
    orientation: str | None = None
    ocr_confidence: float | None = None


class ImageFeatureRow(FeatureRow):
    """Features of one canonical image. Key: creative_id.

    Columns mirror ``adpipeline.features.schema.FEATURES`` (a test keeps them in step). Null means "not known by
    this provider", never a guess; list columns are empty when unknown or absent.
    """

    face_count: int | None = None
    text_area_share: float | None = None
    text_position: str | None = None


class VideoFeatureRow(FeatureRow):
    """Features of one video. Key: creative_id. Columns mirror ``adpipeline.features.schema.FEATURES``."""

    first_3s_summary: str | None = None
    brand_first_seen_s: float | None = None
    product_on_screen: bool | None = None
    voice_over: bool | None = None
    music: bool | None = None
    on_screen_text: list[str] = Field(default_factory=list)
    on_screen_text_times_s: list[float] = Field(default_factory=list, description="Parallel to on_screen_text.")
    scene_count: int | None = None
    has_audio: bool | None = None


class ModelCall(Row):
    """Which model call a ``genai_usage`` row is: the first columns of :class:`GenAIUsage`. Not a table."""

    call_id: str
    creative_id: str
    modality: str | None = Field(None, description="image or video.")
    provider: str
    model: str = Field(description="The model that answered (as the provider reports it), never empty.")
    mode: str = Field(description="online, batch, or offline (no model API).")
    prompt_version: str


class TokenUsage(Row):
    """Tokens of one model call, by kind: the token columns of :class:`GenAIUsage`, and what the providers report and
    the price table bills (``features.pricing``). Not a table."""

    input_text_tokens: int = 0
    input_image_tokens: int = 0
    input_video_tokens: int = 0
    input_audio_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    thinking_tokens: int = 0

    @property
    def input_tokens(self) -> int:
        return self.input_text_tokens + self.input_image_tokens + self.input_video_tokens + self.input_audio_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(**{name: getattr(self, name) + getattr(other, name) for name in TokenUsage.model_fields})

    def as_columns(self) -> dict[str, Any]:
        """The token columns of a ``genai_usage`` row."""
        return {name: getattr(self, name) for name in TokenUsage.model_fields}


# Pydantic puts inherited columns first, from the last base to the first: ModelCall's, then TokenUsage's, then these.
class GenAIUsage(TokenUsage, ModelCall):
    """One row per model call (offline calls too, at zero cost). Key: call_id."""

    cost_usd: float = 0.0
    latency_ms: int | None = None
    attempts: int = Field(1, description="HTTP attempts this call took (retries on 429/5xx included).")
    status: str
    reason: str | None = None
    price_version: str | None = Field(None, description="Version of the price table cost_usd was computed with.")
    batch_id: str | None = Field(None, description="The batch job that carried the call (mode batch).")
    run_id: str
    called_at: dt.datetime


class GenAIBatch(Row):
    """One row per submitted batch job (Gemini Batch mode). Key: batch_id."""

    batch_id: str = Field(description="The provider's job name, e.g. batches/abc123.")
    modality: str
    provider: str
    model: str
    prompt_version: str
    creative_ids: list[str] = Field(default_factory=list, description="Request order: response i is creative i.")
    state: str = Field(description="submitted, collected, failed or expired.")
    reason: str | None = None
    estimated_cost_usd: float = 0.0
    cost_usd: float | None = None
    submitted_run_id: str
    collected_run_id: str | None = None
    submitted_at: dt.datetime


# --- faces ----------------------------------------------------------------------------------------
class FaceDetection(Row):
    """One tracked face in one video (a track = detections of one person joined across samples). Key: track_id."""

    track_id: str
    creative_id: str
    face_id: str | None = None
    backend: str
    model_id: str
    first_time_s: float
    last_time_s: float
    best_time_s: float
    n_frames: int
    det_score: float
    box_size_px: int
    quality: float = 0.0  # best sample's quality (0..1); the face keeps the crop of its best-quality track
    embedding: list[float]
    crop_path: str | None = Field(None, description="Bucket key of the track's best crop (faces/crops/...).")
    best_box: list[int] = Field(
        default_factory=list, description="(x0, y0, x1, y1) of the best sample, video pixels (gallery JSON records)."
    )


class Face(Row):
    """One unique person across all videos. Key: face_id."""

    face_id: str
    backend: str
    model_id: str
    centroid: list[float]
    n_tracks: int
    n_videos: int
    first_creative_id: str
    best_track_id: str | None = None
    best_quality: float | None = None
    best_crop_path: str | None = Field(None, description="Bucket key of the face's best crop (faces/crops/...).")


class FaceVideoStatus(Row):
    """Per-video result of the faces stage (ok / no_faces / failed + reason). Key: creative_id."""

    creative_id: str
    status: str
    reason: str | None = None
    frames_sampled: int = 0
    tracks: int = 0
    backend: str
    model_id: str


class FacePerformance(Row):
    """Per unique face (plus one ``__no_face__`` baseline row): the ads it appears in and their metrics."""

    face_id: str
    n_videos: int
    n_ads: int
    impressions: int
    clicks: int
    spend: float
    conversions: int
    ctr: float | None = None
    cvr: float | None = None
    cpa: float | None = None
    avg_ad_ctr: float | None = None
    median_ad_ctr: float | None = None
    stddev_ad_ctr: float | None = None
    best_crop_path: str | None = Field(None, description="Bucket key of the face's best crop (faces/crops/...).")
    n_ads_with_impressions: int = Field(0, description="Ads the per-ad CTR average, median and spread rest on.")
    support: str | None = Field(None, description="single_ad (1 ad), thin (2-4) or ok (5+): how far to trust it.")


class AdEnriched(Row):
    """The final joined table: one row per raw ad row. Key: (ad_id, date)."""

    ad_id: str
    date: dt.date
    campaign: str | None = None
    media_type: str | None = None
    creative_id: str | None = None
    url: str | None = None
    fetch_status: str | None = None
    duplicate_group_id: str | None = None
    canonical_creative_id: str | None = None
    impressions: int = 0
    clicks: int = 0
    spend: float = 0.0
    conversions: int = 0
    ctr: float | None = None
    width: int | None = None
    height: int | None = None
    aspect_label: str | None = None
    duration_s: float | None = None
    has_audio: bool | None = None
    feature_provider: str | None = None
    feature_model: str | None = None
    feature_status: str | None = Field(None, description="ok, or why the features are missing (e.g. skipped_budget).")
    product_type: str | None = None
    product_category: str | None = None
    brands: list[str] = Field(default_factory=list)
    visual_style: str | None = None
    people_count: int | None = None
    setting: str | None = None
    language: str | None = None
    has_text: bool | None = None
    ocr_text: str | None = Field(None, description="Text in the creative (OCR offline, read by the model otherwise).")
    promotions: list[str] = Field(default_factory=list)
    discount_percent: float | None = None
    call_to_action: str | None = None
    cta_kind: str | None = None
    dominant_colors: list[str] = Field(default_factory=list)
    face_ids: list[str] = Field(default_factory=list)
    n_faces: int = 0
    customer_ids: list[str] = Field(default_factory=list, description="Gallery customers seen in the video.")
    n_customers: int = 0


class FeaturePerformance(Row):
    """Performance of the creatives that show one feature value (or one face), with how sure we are.

    Key: (feature, value). Rebuilt by the final DAG from ``ads_enriched`` (all dates); the insights page runs the same
    SQL for a date range. Pooled per creative (duplicates count once) in a beta-binomial way: each creative's weight
    saturates at 1 / ``overdispersion`` impressions, so one big creative cannot decide a value (the SQL file explains
    the estimate). ``flag`` is set only where the 95 % interval excludes ``baseline_ctr`` and the value has at least
    ``ADP_FEATURE_MIN_IMPRESSIONS`` impressions over at least two creatives.
    """

    feature: str = Field(
        description="media_type, cta_kind, promotion, color, has_text, people, visual_style, setting, "
        "product_category, language, aspect, brand, face or customer."
    )
    value: str
    n_creatives: int = Field(description="Distinct creatives (canonical of each duplicate group) with the value.")
    n_ads: int
    impressions: int
    clicks: int
    spend: float
    conversions: int
    ctr: float | None = Field(None, description="Clicks / impressions (a big creative weighs by its size here).")
    ctr_estimate: float | None = Field(None, description="Creative-pooled CTR: the creatives' CTRs, weighted.")
    ctr_low: float | None = Field(None, description="95 % interval of ctr_estimate, lower end (Wilson).")
    ctr_high: float | None = Field(None, description="95 % interval of ctr_estimate, upper end (Wilson).")
    effective_impressions: float | None = Field(None, description="Sum of the creatives' weights.")
    overdispersion: float | None = Field(None, description="rho: spread of CTR between creatives (0: binomial).")
    spend_weighted_ctr: float | None = Field(None, description="Creatives' CTRs weighted by their spend.")
    cpc: float | None = None
    baseline_ctr: float | None = Field(None, description="Creative-pooled CTR of all other creatives, same dates.")
    lift: float | None = Field(None, description="ctr_estimate / baseline_ctr - 1.")
    flag: str | None = Field(None, description="above or below the baseline, only where the interval excludes it.")


@dataclass(frozen=True)
class TableSpec:
    """How a table is keyed and written."""

    name: str
    model: type[Row]
    key: tuple[str, ...]
    write: Literal["merge", "rebuild", "source"]
    doc: str = ""
    partition_by: str | None = None
    """DATE column the table is partitioned by (BigQuery); writes replace whole partitions of it."""
    cluster_by: tuple[str, ...] = ()
    """Columns the table is clustered by (BigQuery, at most four); empty: the key, which MERGEs and joins use."""

    @property
    def clustering(self) -> tuple[str, ...]:
        """The clustering columns: ``cluster_by``, else the key (BigQuery allows four)."""
        return (self.cluster_by or self.key)[:4]


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec("raw_ads", RawAd, ("ad_id", "date"), "source", "source rows (demo/local only)", partition_by="date"),
        TableSpec("creatives", Creative, ("creative_id",), "merge"),
        TableSpec("media_fetches", MediaFetch, ("creative_id",), "merge"),
        TableSpec("image_hashes", ImageHash, ("creative_id",), "merge"),
        TableSpec("duplicate_groups", DuplicateGroup, ("creative_id",), "merge"),
        TableSpec("video_metadata", VideoMetadata, ("creative_id",), "merge"),
        TableSpec("image_features", ImageFeatureRow, ("creative_id",), "merge"),
        TableSpec("video_features", VideoFeatureRow, ("creative_id",), "merge"),
        TableSpec("genai_usage", GenAIUsage, ("call_id",), "merge"),
        TableSpec("genai_batches", GenAIBatch, ("batch_id",), "merge"),
        TableSpec("face_detections", FaceDetection, ("track_id",), "merge"),
        TableSpec("faces", Face, ("face_id",), "merge"),
        TableSpec("face_video_status", FaceVideoStatus, ("creative_id",), "merge"),
        TableSpec("face_performance", FacePerformance, ("face_id",), "rebuild"),
        # Joined to the creatives on creative_id; read by ad. Rebuilt a window of date partitions at a time.
        TableSpec(
            "ads_enriched",
            AdEnriched,
            ("ad_id", "date"),
            "rebuild",
            partition_by="date",
            cluster_by=("creative_id", "ad_id"),
        ),
        TableSpec("feature_performance", FeaturePerformance, ("feature", "value"), "rebuild"),
    )
}


# --- gallery, verification (adpipeline/faces/README.md) -------------------------------------------
# Person data, for deletion of one person (forget): every model below lists in PERSON_COLUMNS which of its columns
# hold a person id, a vector (biometric data) and a bucket key/URL.
class GalleryPhoto(Row):
    """One photo of the customer base and what enrolment made of it. Key: (customer_id, photo_key, model_id)."""

    customer_id: str
    photo_key: str = Field(description="Path of the photo under the gallery root (e.g. c042.jpg or c042/side.png).")
    photo_url: str = Field(description="Full URL of the photo in the customer base bucket.")
    sha256: str | None = None
    status: str = Field(description="enrolled, or rejected.")
    reason: str | None = Field(
        None, description="Why rejected: no_face, more_than_one_face, face_too_small, too_blurred, not_an_image."
    )
    faces: int = 0
    face_px: int | None = None
    sharpness: float | None = None
    backend: str
    model_id: str
    embedding: list[float] = Field(default_factory=list, description="Unit embedding (empty when rejected).")
    run_id: str


class GalleryTemplate(Row):
    """One template per customer and model: the unit mean of the enrolled photos' embeddings.
    Key: (customer_id, model_id)."""

    customer_id: str
    backend: str
    model_id: str
    template: list[float]
    n_photos: int
    photo_keys: list[str] = Field(default_factory=list)
    photo_sha256s: list[str] = Field(default_factory=list)
    run_id: str


class CustomerAppearance(Row):
    """A gallery customer found in an ad video (open-set match of the video's tracks).
    Key: (customer_id, creative_id, face_id)."""

    customer_id: str
    creative_id: str
    face_id: str = Field(description="The unique face the matching tracks belong to ('' when unclustered).")
    backend: str
    model_id: str
    track_ids: list[str] = Field(default_factory=list)
    first_time_s: float
    last_time_s: float
    best_time_s: float
    best_distance: float
    best_similarity: float = Field(description="Cosine similarity of the closest track to the template.")
    confidence_pct: float | None = Field(None, description="Calibrated probability of the same person (0-100).")
    threshold: float
    copied_photo_urls: list[str] = Field(
        default_factory=list, description="Keys of the customer's photos in the gallery output bucket (customers/...)."
    )


class GalleryVideoRecord(Row):
    """The JSON record written for one processed video (``<output>/YYYYMMDD/<creative_id>.json``).
    Key: creative_id."""

    creative_id: str
    record_url: str = Field(description="Key of the JSON record in the gallery output bucket (YYYYMMDD/<id>.json).")
    record_sha256: str
    n_tracks: int
    n_matched: int
    customer_ids: list[str] = Field(default_factory=list)
    model_id: str
    run_id: str


class FaceVerification(Row):
    """One photo-vs-video verification (manual DAG, CLI, insights page). Key: verification_id."""

    verification_id: str = Field(description="sha256 of (image sha256, video sha256, model, FAR), first 32 hex.")
    image_url: str
    video_url: str
    image_sha256: str | None = None
    video_sha256: str | None = None
    status: str
    reason: str | None = None
    face_in_image: bool = False
    faces_in_image: int = 0
    face_in_video: bool = False
    matched: bool = False
    confidence_pct: float | None = None
    frames_checked: int = 0
    best_frame_time_s: float | None = None
    distance: float | None = None
    threshold: float | None = None
    far: float | None = None
    backend: str
    model_id: str
    run_id: str
    verified_at: dt.datetime


TABLES.update(
    {
        spec.name: spec
        for spec in (
            TableSpec("gallery_photos", GalleryPhoto, ("customer_id", "photo_key", "model_id"), "merge"),
            TableSpec("gallery", GalleryTemplate, ("customer_id", "model_id"), "merge"),
            TableSpec("customer_appearances", CustomerAppearance, ("customer_id", "creative_id", "face_id"), "merge"),
            TableSpec("gallery_video_records", GalleryVideoRecord, ("creative_id",), "merge"),
            TableSpec("face_verifications", FaceVerification, ("verification_id",), "merge"),
        )
    }
)

PERSON_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    # table: {"person": columns holding a person id, "vector": biometric vectors, "bucket": bucket keys / URLs}
    "gallery_photos": {"person": ("customer_id",), "vector": ("embedding",), "bucket": ("photo_url",)},
    "gallery": {"person": ("customer_id",), "vector": ("template",), "bucket": ()},
    "customer_appearances": {
        "person": ("customer_id", "face_id"),
        "vector": (),
        "bucket": ("copied_photo_urls",),
    },
    "gallery_video_records": {"person": ("customer_ids",), "vector": (), "bucket": ("record_url",)},
    "face_verifications": {"person": (), "vector": (), "bucket": ("image_url", "video_url")},
    "face_detections": {"person": ("face_id",), "vector": ("embedding",), "bucket": ("crop_path",)},
    "faces": {"person": ("face_id",), "vector": ("centroid",), "bucket": ("best_crop_path",)},
}
"""Which columns of each table hold person ids, biometric vectors and bucket objects (for deleting one person)."""

_CROP_KEY = re.escape(CROP_PREFIX) + r"[^/]+$"
BUCKET_KEYS: dict[str, dict[str, str]] = {
    # table: {column: the key's shape at the end of a full URL or path, a regular expression}
    "face_detections": {"crop_path": _CROP_KEY},
    "faces": {"best_crop_path": _CROP_KEY},
    "face_performance": {"best_crop_path": _CROP_KEY},
    "gallery_video_records": {"record_url": r"[0-9]{8}/[^/]+\.json$"},
    "customer_appearances": {"copied_photo_urls": r"customers/[^/]+/[^/]+$"},
}
"""Columns that store bucket keys (crops: the configured bucket; gallery records and copies: the gallery output
bucket). Rows written before keys were stored hold absolute paths or URLs; ``Warehouse.ensure_tables`` rewrites them
to the key these patterns find at their end, so a moved ADP_HOME or bucket keeps its objects."""


# --- privacy (adpipeline/privacy/) -----------------------------------------------------------------
class PrivacyRequest(Row):
    """One audit row per privacy request: a forget (or its dry run), a withdrawal, a retention or enforcement run.
    Key: request_id. Holds no biometric data and no plain person id: the subject is a salted sha256 digest."""

    request_id: str
    action: str = Field(description="forget, withdraw, retention or enforce.")
    subject_kind: str | None = Field(None, description="customer_id or face_id (forget / withdraw).")
    subject_digest: str | None = Field(
        None, description="privacy.suppression.subject_digest(kind, id); never the id itself."
    )
    dry_run: bool = False
    status: str = Field(description="started, done (dry_run: listed).")
    triggered_by: str = Field(description="Airflow: the triggering user and the run id; CLI: the OS user.")
    run_id: str | None = None
    requested_at: dt.datetime
    finished_at: dt.datetime | None = None
    counts_json: str = Field("[]", description='JSON list of {"target", "action", "count"}: tables, bucket prefixes.')
    note: str | None = Field(None, description="What was reported, not deleted (e.g. the customer's own photos).")


class PrivacySuppression(Row):
    """What keeps a forgotten person from coming back. Key: (request_id, kind, digest). No vectors, no crops, no plain
    ids: ``digest`` is a salted sha256 of a customer id, face id, track id or source-photo sha256; a ``track`` row
    also names the video (creative id, sha256 of its bytes) and the seconds the person was on screen."""

    request_id: str
    kind: str = Field(description="customer, face, track or photo.")
    digest: str
    creative_id: str | None = None
    video_sha256: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    backend: str | None = None
    model_id: str | None = None
    created_at: dt.datetime


TABLES["privacy_requests"] = TableSpec("privacy_requests", PrivacyRequest, ("request_id",), "merge")
TABLES["privacy_suppressions"] = TableSpec(
    "privacy_suppressions", PrivacySuppression, ("request_id", "kind", "digest"), "merge"
)


# --- run health (adpipeline/stages/context.py: warn_failure_share) -------------------------------------------------
class RunWarning(Row):
    """A task that succeeded although more than ``ADP_PERMANENT_FAILURE_WARN_SHARE`` of its items failed for a
    permanent reason (e.g. every URL outside the allowed local roots). Key: (run_id, stage, part)."""

    run_id: str = Field(description="The Airflow run id (CLI: direct, demo, ...).")
    stage: str = Field(description="The stage step that warned, e.g. media.fetch.")
    part: str = Field("", description="The mapped chunk it concerns ('' outside a mapped task).")
    failed: int = Field(description="Items that failed for a permanent reason.")
    total: int = Field(description="Items the step worked on.")
    warn_share: float = Field(description="The share setting it was compared with (0.5: 50 %).")
    statuses_json: str = Field("{}", description='JSON {"status": count} of the permanent failures.')
    message: str = Field(description="The warning line, as logged and posted to the alert connection.")
    created_at: dt.datetime = Field(description="When the warning was raised (UTC).")


TABLES["run_warnings"] = TableSpec("run_warnings", RunWarning, ("run_id", "stage", "part"), "merge")


# --- final stage watermark (adpipeline/stages/final.py) --------------------------------------------
class FinalWatermark(Row):
    """What the final stage last rebuilt from: one row per table it reads (``upstream``, version read before the
    rebuild) or writes (``output``, version read after it), plus the ``recipe`` (digest of its SQL files and
    settings). Key: table_name. A final run whose versions all match skips the rebuild."""

    table_name: str
    role: str = Field(description="upstream, output or recipe.")
    version: str = Field(description="Backend token: DuckDB row count and content hash; BigQuery modified time.")


TABLES["final_watermark"] = TableSpec("final_watermark", FinalWatermark, ("table_name",), "merge")


# --- creative fatigue and adjusted feature effects (adpipeline/insights/README.md) ----------------------------
class CreativeFatigue(Row):
    """How one creative's CTR changed with the days it has been live. Key: unit_id. Rebuilt by the final DAG from
    ``ads_enriched`` (``sql/final/select_creative_fatigue.sql``). A duplicate group counts once (its canonical image);
    a video is its own unit. Days live count from the group's first day with impressions."""

    unit_id: str = Field(description="Canonical creative of the duplicate group (images) or the creative (videos).")
    media_type: str | None = None
    first_date: dt.date
    last_date: dt.date
    days_live: int = Field(description="Days from the first to the last day with impressions, plus one.")
    n_days: int = Field(description="Days with impressions.")
    impressions: int
    clicks: int
    early_impressions: int = Field(description="Impressions on days live 0-6.")
    early_clicks: int
    early_ctr: float | None = None
    early_ctr_low: float | None = Field(None, description="95 % interval (Wilson on impressions / overdispersion).")
    early_ctr_high: float | None = None
    recent_impressions: int = Field(description="Impressions on the last 7 days live (when 14 or more days live).")
    recent_clicks: int
    recent_ctr: float | None = None
    recent_ctr_low: float | None = None
    recent_ctr_high: float | None = None
    ctr_change: float | None = Field(None, description="recent_ctr / early_ctr - 1 (negative: lost CTR).")
    raw_decay: float | None = Field(None, description="Weighted least-squares slope of log CTR per day live.")
    raw_decay_se: float | None = None
    decay: float | None = Field(None, description="raw_decay shrunk toward the pool of all creatives (per day).")
    decay_low: float | None = Field(None, description="95 % interval of decay.")
    decay_high: float | None = None
    pool_decay: float | None = Field(None, description="Precision-weighted mean slope of all creatives.")
    pool_spread: float | None = Field(
        None, description="Spread (standard deviation) of true slopes, DerSimonian-Laird."
    )
    fitted_intercept: float | None = Field(None, description="log CTR at day live 0 of the shrunk fit.")
    days_to_half: float | None = Field(None, description="ln 2 / -decay: days for the fitted CTR to halve.")
    overdispersion: float | None = Field(None, description="Pooled Pearson dispersion of daily clicks about the fits.")
    fatigued: bool = Field(
        False,
        description="The recent interval lies below the early one by more than ADP_FATIGUE_MIN_DROP, with "
        "ADP_FATIGUE_MIN_IMPRESSIONS impressions in each window.",
    )
    day_index: list[int] = Field(default_factory=list, description="Days live with impressions (for the charts).")
    day_impressions: list[int] = Field(default_factory=list)
    day_clicks: list[int] = Field(default_factory=list)


class FeatureEffect(Row):
    """The CTR effect of one feature value (face, customer) adjusted for all other features, the campaign and the week:
    one binomial GLM (logit) over all values at once, standard errors clustered by creative. Key: (feature, value).
    Rebuilt by the final DAG (``adpipeline/insights/effects.py``); beside it the unadjusted lift of
    ``feature_performance``."""

    feature: str
    value: str
    n_creatives: int = Field(description="Creatives (units) in the model with the value.")
    impressions: int
    odds_ratio: float | None = Field(None, description="exp(coefficient): CTR odds with the value vs without.")
    odds_ratio_low: float | None = Field(None, description="95 % interval, clustered by creative.")
    odds_ratio_high: float | None = None
    p_value: float | None = None
    adjusted_lift: float | None = Field(None, description="odds_ratio - 1 (close to the CTR lift at CTRs of a few %).")
    adjusted_flag: str | None = Field(None, description="above or below, only where the interval excludes 1.")
    unadjusted_lift: float | None = Field(None, description="feature_performance.lift.")
    unadjusted_flag: str | None = Field(None, description="feature_performance.flag.")
    disagreement: str | None = Field(
        None,
        description="sign (both flagged, in opposite directions), significance (one flagged, the other not) or NULL "
        "where they agree.",
    )
    model_creatives: int = Field(description="Creatives the model was fitted on (a sample above the cap).")
    model_cells: int = Field(description="Rows (creative, campaign, week cells) the model was fitted on.")
    model_terms: int = Field(description="Coefficients of the model (values, campaigns, weeks, intercept).")


TABLES["creative_fatigue"] = TableSpec("creative_fatigue", CreativeFatigue, ("unit_id",), "rebuild")
TABLES["feature_effects"] = TableSpec("feature_effects", FeatureEffect, ("feature", "value"), "rebuild")
