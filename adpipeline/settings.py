"""One place for every setting. Environment variables prefixed ``ADP_`` (or a ``.env`` file) fill it.

Unknown ``ADP_*`` keys are rejected so that a typo fails loudly instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ADP_"


class Settings(BaseSettings):
    """adpipeline settings. Every field is listed, with a comment, in ``.env.sample``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=os.environ.get("ADP_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        # Non-ADP_ lines in .env (docker-compose reads the same file) are ignored; unknown ADP_ names are
        # rejected by _no_unknown_names below, whether they come from the environment or from .env.
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    # --- where things live -------------------------------------------------------------------
    home: Path = Field(Path(".local"), description="Folder for the local warehouse file, bucket and caches.")
    warehouse_backend: Literal["duckdb", "bigquery"] = "duckdb"
    """Warehouse: duckdb (embedded file) or bigquery."""
    duckdb_path: Path | None = Field(None, description="DuckDB file; defaults to <home>/warehouse.duckdb.")
    duckdb_lock_wait_s: float = Field(600.0, gt=0)
    """Seconds a DuckDB writer waits for another process to release the file (writers take turns)."""
    bq_project: str | None = None
    """BigQuery project (required when the warehouse is bigquery)."""
    bq_dataset: str = "adpipeline"
    """BigQuery dataset holding the adpipeline tables."""
    bq_location: str = "US"
    """BigQuery location of the dataset and jobs."""
    bucket_url: str | None = Field(None, description="fsspec URL of the bucket; defaults to <home>/bucket.")
    gcp_conn_id: str = "google_cloud_default"
    """Airflow connection for BigQuery and GCS (read inside tasks, or from AIRFLOW_CONN_<ID>); else ADC. Empty: ADC."""

    # --- runs: scheduling and fan-out ----------------------------------------------------------
    schedule_start_date: dt.date = dt.date(2026, 10, 1)
    """First data interval of the daily adp_import schedule (read when the DAG file is parsed)."""
    schedule_catchup: bool = False
    """Unpausing adp_import runs every missed day since the start date (off: only the latest; backfill history)."""
    media_chunk_size: int = Field(500, ge=1, le=100_000)
    """Creatives per mapped media task (fetch + analyse); each chunk writes its own rows."""
    features_chunk_size: int = Field(200, ge=1, le=100_000)
    """Creatives per mapped feature-extraction task (bounds a task's memory: its media is held at once)."""
    faces_chunk_size: int = Field(20, ge=1, le=10_000)
    """Videos per mapped face-detection task."""
    alert_conn_id: str | None = None
    """Airflow connection whose host is a webhook URL (e.g. Slack) for one-line failure alerts; empty: log only."""

    # --- source table ------------------------------------------------------------------------
    source_table: str = Field("raw_ads", description="Raw ads table (name in the warehouse, or project.dataset.table).")
    source_ad_id_column: str = "ad_id"
    """Source table column: ad id."""
    source_date_column: str = "date"
    """Source table column: date of the row (DATE or TIMESTAMP)."""
    source_image_url_column: str = "image_url"
    """Source table column: image URL (https://, gs:// or a local path)."""
    source_video_url_column: str = "video_url"
    """Source table column: video URL."""
    source_campaign_column: str = "campaign"
    """Source table column: campaign name."""
    source_impressions_column: str = "impressions"
    """Source table column: impressions."""
    source_clicks_column: str = "clicks"
    """Source table column: clicks."""
    source_spend_column: str = "spend"
    """Source table column: spend."""
    source_conversions_column: str = "conversions"
    """Source table column: conversions."""

    # --- media -------------------------------------------------------------------------------
    allow_local_paths: bool = False
    """Allow local file paths / file:// as media URLs (the demo sets it; keep false in production)."""
    fetch_allowlist: list[str] = Field(default_factory=list, description="Hosts/CIDRs exempt from the address block.")
    fetch_concurrency: int = Field(16, ge=1, le=256)
    """Media fetches in flight per task (bodies stream to disk: ~64 KiB of memory each, temp disk up to N x cap)."""
    fetch_per_host: int = Field(4, ge=1, le=64)
    """Media fetches in flight per host."""
    fetch_connect_timeout_s: float = Field(5.0, gt=0)
    """Connect timeout per request, seconds."""
    fetch_read_timeout_s: float = Field(15.0, gt=0)
    """Read timeout (between bytes), seconds."""
    fetch_total_timeout_s: float = Field(60.0, gt=0)
    """Total time allowed for one fetch including retries, seconds."""
    fetch_max_retries: int = Field(3, ge=0, le=10)
    """Retries on 429 / 5xx / connection errors (never on other 4xx)."""
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    """Redirects followed (each one re-checked against the address block)."""
    max_image_bytes: int = Field(25 * 2**20, gt=0)
    """Largest image accepted, bytes (enforced while streaming)."""
    max_video_bytes: int = Field(256 * 2**20, gt=0)
    """Largest video accepted, bytes (enforced while streaming; 16 at the cap need 4 GiB of temp disk, not memory)."""
    # Pillow refuses more than twice its own MAX_IMAGE_PIXELS (178,956,970) whatever this says.
    max_image_pixels: int = Field(50_000_000, gt=0, le=178_956_970)
    """Largest decoded image, pixels (decompression-bomb guard; ~150 MB of RGB at the default)."""
    refresh_media: bool = False
    """Fetch every creative of the run's window again, whatever its status, back-off or cached bytes."""
    fetch_backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt, with jitter.")
    fetch_max_retry_after_s: float = Field(
        30.0, ge=0, description="Longest Retry-After honoured; a longer one ends the fetch as rate_limited."
    )
    dhash_threshold: int = Field(
        12, ge=0, le=32, description="dHash Hamming distance (image or thumbnail hash) that makes a candidate pair."
    )
    # Renamed from fine_diff_threshold (grey levels) when its unit changed, so an old value fails loudly.
    duplicate_detail_threshold: float = Field(
        2.0,
        ge=0,
        le=10,
        description="Largest aligned 8x8-block 128-px thumbnail difference, in units of local contrast, that confirms "
        "a pair (media README).",
    )
    local_media_roots: list[Path] = Field(
        default_factory=list,
        description="Folders that local paths and file:// media URLs must lie under (symlinks resolved), when "
        "allow_local_paths is on; empty: <home>/sample (where `adpipeline demo` writes).",
    )
    fetch_retry_transient_s: float = Field(
        900.0,
        ge=0,
        description="A transient fetch failure (timeout, 5xx, 429, connection error, body cut short) is fetched "
        "again by the first run after this wait; the wait doubles with each failed run in a row.",
    )
    fetch_retry_permanent_s: float = Field(
        7 * 86400.0,
        ge=0,
        description="A permanent failure (blocked address, 404/410, too large, not an image, unsupported format, "
        "undecodable bytes) is fetched again only after this wait, doubling per failed run; refresh_media retries "
        "the window at once.",
    )
    fetch_retry_max_s: float = Field(30 * 86400.0, ge=0, description="Longest wait before a failed fetch is retried.")
    duplicate_fine_check: bool = Field(
        True,
        description="Confirm dHash candidates with the finer thumbnail check; false groups by dHash alone "
        "(media README).",
    )
    duplicate_text_check: bool = Field(
        True,
        description="Keep apart candidate pairs whose lines in the same place say different things (another price, "
        "headline, offer or call to action); an image's text is read (OCR, about 0.4 s on one core) only when a pair "
        "the pixel check confirms needs it, once; off only with duplicate_fine_check on (media README).",
    )
    duplicate_text_candidate_bits: int = Field(
        20,
        ge=0,
        le=64,
        description="dHash distance in bits (image or thumbnail hash) within which two images whose tallest text line "
        "reads the same are candidate duplicates too (a crop plus a frame moves a copy further than dhash_threshold); "
        "at or below dhash_threshold turns this route off; needs duplicate_text_check (media README).",
    )
    duplicate_text_key_max_images: int = Field(
        1000,
        ge=0,
        description="Images (grouped and pending) that may share one tallest text line for it still to make candidate "
        "pairs; a line more say (a brand name, a call to action) is too common to count (media README).",
    )
    duplicate_coarse_reject: float = Field(
        48.0,
        ge=0,
        le=255,
        description="Largest aligned 4x4-block 64-px thumbnail difference, in grey levels, a candidate pair may have "
        "before the detail check runs (a fast reject).",
    )
    duplicate_link_share: float = Field(
        0.35,
        gt=0,
        le=1,
        description="Share (0-1) of confirmed pairs between two groups of one component of confirmed pairs that "
        "merges them (average linkage; media README).",
    )
    duplicate_all_pairs_within: int = Field(
        64,
        ge=0,
        le=1500,
        description="Components of confirmed pairs up to this many images have every pair within twice dhash_threshold "
        "checked by the finer check, not only the candidates (more recall, more checks; 0: candidates only).",
    )
    dedupe_batch_size: int = Field(
        20_000,
        gt=0,
        description="Pending images grouped per pass (each pass reads the index once and MERGEs its rows).",
    )
    max_failure_share: float = Field(0.5, ge=0.0, le=1.0)
    """A task fails only when more than this share of its items failed (the rest are kept)."""
    permanent_failure_warn_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="A step whose permanent per-item failures (blocked paths, corrupt files, 404s) pass this share of "
        "its items logs a warning, records it in run_warnings (adpipeline summary) and posts it to ADP_ALERT_CONN_ID; "
        "the task still succeeds (1.0: never warn).",
    )

    # --- features ----------------------------------------------------------------------------
    feature_provider: Literal["offline", "gemini", "langchain"] = "offline"
    """Feature extractor: offline (embedded default), gemini or langchain."""
    gemini_api_key: SecretStr | None = None
    """Gemini API key (secret; never logged)."""
    gemini_model: str = "gemini-2.5-flash"
    """Gemini model for features."""
    gemini_base_url: str | None = None
    """Override the Gemini API base URL (tests point it at the local stub server)."""
    gemini_api_version: str | None = None
    """Gemini API version in the URL (empty: the SDK's default; v1beta is needed for Batch and Files)."""
    gemini_media_resolution: Literal["low", "medium", "high"] | None = None
    """Media resolution Gemini reads images/video at (low: ~4x fewer video tokens); empty: the model's default."""
    gemini_inline_max_bytes: int = Field(15 * 2**20, gt=0)
    """Videos up to this size are sent inline; larger ones go through the Files API (upload, wait, delete)."""
    gemini_file_wait_s: float = Field(300.0, gt=0)
    """Longest wait for an uploaded video to become ACTIVE; past it the item gets status failed."""
    gemini_file_poll_s: float = Field(2.0, gt=0)
    """Seconds between Files API state checks."""
    langchain_model: str | None = Field(
        None, description="provider:model of a LangChain chat model, e.g. azure_openai:gpt-4o or openai:gpt-4o-mini."
    )
    langchain_api_key: SecretStr | None = None
    """API key for the LangChain chat model (secret; else the provider's own environment variable is used)."""
    langchain_base_url: str | None = None
    """Endpoint of the LangChain chat model: the Azure OpenAI resource URL, or an OpenAI-compatible base URL."""
    azure_openai_api_version: str = "2024-10-21"
    """Azure OpenAI API version (azure_openai models)."""
    langchain_price_model: str | None = None
    """Price-table name to bill LangChain calls at when the model name is a deployment name (Azure)."""
    langchain_video_frames: int = Field(8, ge=1, le=64)
    """LangChain models get a video as this many evenly spaced frames (chat APIs take images, not video)."""
    price_table: Path | None = None
    """Price table (TOML, USD per million tokens); empty: the packaged adpipeline/features/prices.toml."""
    run_budget_usd: float = Field(5.0, ge=0)
    """Budget cap per features DAG run (all its tasks together), USD; items that do not fit get skipped_budget."""
    genai_mode: Literal["auto", "online", "batch"] = "auto"
    """online calls, Gemini Batch mode (50% cheaper, hours), or auto: batch from genai_batch_min_items on."""
    genai_batch_min_items: int = Field(200, ge=1)
    """In auto mode, a task with at least this many items to call uses Batch mode (Gemini only)."""
    genai_batch_max_bytes: int = Field(18 * 2**20, gt=0)
    """Largest inline request payload of one batch job; more items are split over several jobs."""
    genai_batch_timeout_h: float = Field(48.0, gt=0)
    """Hours a batch job may take before the collector gives up on it (its items are picked up again)."""
    genai_rpm: float = Field(300.0, gt=0)
    """Model requests per minute for the whole project (split over the genai_api pool's slots)."""
    genai_tpm: float = Field(4_000_000.0, gt=0)
    """Model input tokens per minute for the whole project (split over the genai_api pool's slots)."""
    genai_pool_slots: int = Field(2, ge=1, le=64)
    """Slots of the Airflow genai_api pool (tasks calling models at once); each gets 1/slots of the limits."""
    genai_concurrency: int = Field(8, ge=1, le=128)
    """Calls in flight within one task."""
    genai_max_retries: int = Field(4, ge=0, le=10)
    """Retries of one call on 429 / 5xx / timeouts (never on other 4xx)."""
    genai_backoff_s: float = Field(2.0, ge=0)
    """First retry delay for model calls; doubles per attempt, with jitter (Retry-After wins when sent)."""
    genai_timeout_s: float = Field(180.0, gt=0)
    """Timeout of one model HTTP request, seconds."""
    genai_cache: bool = True
    """Reuse a validated answer for identical bytes + provider + model + prompt version (never pay twice)."""
    genai_thinking_budget: int = Field(0, ge=0, le=32768)
    """Thinking tokens per model call (0 = off; Gemini 2.5 Pro needs >= 128), counted in estimates and the budget."""
    ocr_enabled: bool = True
    """Run OCR in the offline extractor."""
    # Offline extractor. Downscaling before OCR keeps banner text readable and OCR near 0.5 s an image on 2 cores.
    ocr_max_side_px: int = Field(
        1280, ge=320, le=4096, description="Longest side a video frame is OCRed at (images: 640, media README)."
    )
    ocr_threads: int = Field(
        1,
        ge=0,
        le=64,
        description="onnxruntime threads per OCR call (1: grouping reads one image per core at once; "
        "0 lets onnxruntime choose).",
    )
    # Videos: frames are sampled by seeking (never a full decode); scene cuts are counted between samples.
    offline_video_sample_fps: float = Field(2.0, gt=0, le=30, description="Sampled frames per second of video.")
    offline_video_max_frames: int = Field(48, ge=1, le=600, description="Cap on sampled frames per video.")
    offline_video_ocr_frames: int = Field(3, ge=0, le=10, description="Sampled frames OCRed (spread, last included).")

    # --- faces -------------------------------------------------------------------------------
    face_backend: Literal["dlib", "insightface"] = "dlib"
    """Face engine: dlib (embedded default) or insightface (model folder; non-commercial licence)."""
    insightface_model_dir: Path | None = None
    """Folder with InsightFace buffalo_l det_10g.onnx and w600k_r50.onnx (never downloaded)."""
    face_sample_fps: float = Field(1.0, gt=0, le=30)
    """Video frames sampled per second for faces."""
    face_max_frames: int = Field(120, ge=1)
    """Cap on sampled frames per video."""
    face_min_size_px: int = Field(40, ge=8)
    """Skip faces smaller than this (shorter box side, video pixels)."""
    face_match_threshold: float | None = Field(None, gt=0, description="Distance to join a face; backend default.")
    # Frames are converted at most this size (longest side, px); crops and aligned chips come from it.
    face_frame_max_side: int = Field(1280, ge=160, le=8192)
    """Longest side (px) frames are converted at; crops and aligned chips come from it."""
    # Frames are downscaled to this longest side before detection: dlib HOG time grows with pixels (640: ~27 ms,
    # 1280: ~95 ms a frame) and its window is ~80 px, so 640 finds faces from ~80 px in 720p (~160 px in 1080p).
    face_detect_max_side: int = Field(640, ge=160, le=8192)
    """Longest side (px) frames are downscaled to before detection (640 finds faces from ~80 px in 720p)."""
    # dlib only: times the detection image is doubled (each ~4x slower, halves the smallest face found).
    face_detect_upsample: int = Field(0, ge=0, le=2)
    """dlib only: times the detection image is doubled (each ~4x slower, halves the smallest face found)."""
    # Detector score under which detections are dropped; None = the backend's default (dlib 0.3, insightface 0.5).
    face_min_det_score: float | None = None
    """Detector score under which detections are dropped; empty = backend default (dlib 0.3, insightface 0.5)."""
    # Embeddings computed per track (best-quality samples); dlib embeds cost ~100 ms each, so tracks reuse them.
    face_embeds_per_track: int = Field(3, ge=1, le=50)
    """Embeddings computed per track (its best-quality samples)."""

    # --- face identity: verify and gallery (adpipeline/faces/README.md) -------------------------
    verify_far: float = Field(0.01, gt=0, lt=1)
    """False-accept rate the photo-vs-video and gallery match thresholds are chosen for (calibrated per model)."""
    verify_image_max_side: int = Field(1600, ge=256, le=8192)
    """Photos are decoded/downscaled to at most this side (px) before face detection."""
    verify_detect_side: int = Field(1024, ge=320, le=4096)
    """Longest side (px) a photo is scaled to (up or down) for face detection."""
    verify_max_image_pixels: int = Field(100_000_000, ge=1_000_000)
    """Non-JPEG photos with more pixels than this are refused (JPEGs are decoded at reduced scale instead)."""
    verify_min_face_px: int = Field(20, ge=8)
    """Faces smaller than this (shorter box side, photo pixels) are not counted in a verification photo."""
    gallery_url: str | None = None
    """Customer base: local folder or gs:// URL; <customer_id>.jpg|png|webp or a folder per customer."""
    gallery_output_url: str | None = None
    """Where matched customers' photos and per-video JSON records go; defaults to <bucket>/gallery_output."""
    gallery_min_face_px: int = Field(60, ge=16)
    """A gallery photo whose face is smaller than this (shorter box side, px) is rejected (face_too_small)."""
    gallery_min_sharpness: float = Field(8.0, ge=0)
    """A gallery photo whose aligned face has a Laplacian variance under this is rejected (too_blurred)."""
    gallery_far: float = Field(0.001, gt=0, lt=1)
    """False-accept rate per comparison for gallery matches (lower than verify_far: each face meets every customer)."""
    photo_cnn_fallback: bool = False
    """dlib only: photos (verify, gallery) where HOG finds no face are retried with dlib's CNN detector (1-25 s)."""
    match_min_confidence_pct: float = Field(90.0, ge=0, le=100)
    """Verify, gallery and identify never call a face matched under this calibrated confidence (%)."""
    face_detector: Literal["blazeface", "hog"] = "blazeface"
    """dlib backend's face detector: blazeface (MediaPipe full-range; turned, covered, small faces) or hog."""

    # --- privacy (adpipeline/privacy/; README "Deleting a person") ----------------------------
    face_retention_days: int = Field(365, ge=0, le=36_500)
    """Days after a face's last ad before adp_privacy removes its crops and vectors (ids and counts stay); 0: off."""
    privacy_compact_duckdb: bool = True
    """After a deletion, rewrite the DuckDB file: DuckDB keeps deleted rows' bytes in freed blocks otherwise."""

    # --- insights (feature_performance and the Airflow UI page) ------------------------------
    feature_min_impressions: int = Field(1000, ge=0)
    """feature_performance flags a value only from this many impressions (and two creatives) on."""
    insights_page_size: int = Field(25, ge=1, le=500)
    """Rows per page on the insights page (faces, duplicate groups, features)."""
    insights_max_upload_bytes: int = Field(50 * 2**20, gt=0)
    """Largest photo or video accepted by the insights verify form, bytes (photos are also held to max_image_bytes)."""

    # --- creative fatigue and adjusted feature effects (adpipeline/insights/README.md) -------------
    fatigue_min_drop: float = Field(0.2, ge=0, lt=1)
    """creative_fatigue flags a creative only where the recent CTR interval lies this share below the early one."""
    fatigue_min_impressions: int = Field(5000, ge=0)
    """creative_fatigue flags a creative only with this many impressions in each of its early and recent weeks."""
    effects_max_cells: int = Field(400_000, ge=1000)
    """feature_effects fits on at most this many (creative, campaign, week) cells, else on a sample of creatives."""
    effects_max_values: int = Field(40, ge=1)
    """feature_effects models at most this many values per feature (most impressions first)."""

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_names(cls, data: object) -> object:
        """pydantic-settings ignores unknown variables; a misspelt ADP_ variable must fail instead."""
        known = {f"{ENV_PREFIX}{name}".upper() for name in cls.model_fields} | {"ADP_ENV_FILE"}
        names = set(os.environ)
        env_file = Path(os.environ.get("ADP_ENV_FILE", ".env"))
        if env_file.is_file():
            names |= {k for k in dotenv_values(env_file) if k}
        unknown = sorted(k for k in names if k.upper().startswith(ENV_PREFIX) and k.upper() not in known)
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; see .env.sample for the valid names")
        return data

    @field_validator("bq_dataset")
    @classmethod
    def _dataset_name(cls, value: str) -> str:
        if not value.replace("_", "").isalnum():
            raise ValueError("bq_dataset may hold only letters, digits and underscores")
        return value

    @model_validator(mode="after")
    def _backend_needs(self) -> Settings:
        if self.warehouse_backend == "bigquery" and not self.bq_project:
            raise ValueError("ADP_WAREHOUSE_BACKEND=bigquery needs ADP_BQ_PROJECT")
        if self.feature_provider == "gemini" and self.gemini_api_key is None and self.gemini_base_url is None:
            raise ValueError("ADP_FEATURE_PROVIDER=gemini needs ADP_GEMINI_API_KEY")
        if self.feature_provider == "langchain" and not self.langchain_model:
            raise ValueError("ADP_FEATURE_PROVIDER=langchain needs ADP_LANGCHAIN_MODEL")
        if self.face_backend == "insightface" and self.insightface_model_dir is None:
            raise ValueError("ADP_FACE_BACKEND=insightface needs ADP_INSIGHTFACE_MODEL_DIR")
        return self

    @property
    def resolved_duckdb_path(self) -> Path:
        return self.duckdb_path or self.home / "warehouse.duckdb"

    @property
    def resolved_bucket_url(self) -> str:
        return self.bucket_url or str((self.home / "bucket").resolve())

    @property
    def resolved_local_media_roots(self) -> list[Path]:
        return [p.resolve() for p in (self.local_media_roots or [self.home / "sample"])]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once). Tests call ``get_settings.cache_clear()`` after changing env."""
    return Settings()
