"""features: structured features for canonical images and for videos, with the configured provider.

Offline (default): the embedded extractor, one zero-cost ledger row per creative. Gemini / LangChain: the
:class:`~adpipeline.features.llm.Runner` (cache, budget, rate limit, retries, one repair), or Gemini Batch mode for
large runs (:func:`collect_batches` finishes those later, from a sensor that frees its worker between checks).
Results are written in chunks while the calls go on, so a killed task keeps what it paid for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any, Literal

from adpipeline import tables
from adpipeline.faults import fault_point
from adpipeline.features import schema
from adpipeline.features.budget import Budget, pending_estimate, split_budget, task_budget
from adpipeline.features.llm import (
    FeatureCache,
    LLMProvider,
    MediaItem,
    Outcome,
    ProviderError,
    RateLimiter,
    Runner,
    task_share,
)
from adpipeline.features.pricing import load_prices
from adpipeline.settings import Settings
from adpipeline.stages.context import Chunk, StageContext, check_failure_share, make_chunks, summary
from adpipeline.stages.media import _blob_key
from adpipeline.warehouse.schema import rows_from_frame

log = logging.getLogger("adpipeline")

Modality = Literal["image", "video"]

FEATURE_TABLES = [
    "creatives",
    "media_fetches",
    "image_hashes",
    "duplicate_groups",
    "video_metadata",
    "image_features",
    "video_features",
    "genai_usage",
    "genai_batches",
]
FLUSH_EVERY = 25
"""Outcomes buffered before they are MERGEd (a killed task loses at most this many paid answers)."""

_IMAGE_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


def get_provider(settings: Settings) -> LLMProvider:
    """The configured model provider (Gemini or LangChain); the offline extractor is not one of them."""
    if settings.feature_provider == "gemini":
        from adpipeline.features.gemini import GeminiProvider

        return GeminiProvider(settings)
    if settings.feature_provider == "langchain":
        from adpipeline.features.langchain_chat import LangChainProvider

        return LangChainProvider(settings)
    raise ValueError(f"{settings.feature_provider!r} is not a model provider")


def images(ctx: StageContext) -> dict[str, Any]:
    """MERGE ``image_features`` (and ``genai_usage``) for the canonical images that lack them (this task's chunk
    in a mapped task, else all pending)."""
    return _extract(ctx, "image")


def videos(ctx: StageContext) -> dict[str, Any]:
    """MERGE ``video_features`` (and ``genai_usage``) for the videos that lack them (chunk, else all pending)."""
    return _extract(ctx, "video")


def plan(ctx: StageContext) -> list[Chunk]:
    """Every canonical image and video that still needs features from the configured provider, model and prompt
    version, whatever day it came from, in chunks of ``features_chunk_size`` (kind ``image`` or ``video``)."""
    s = ctx.settings
    ctx.warehouse.ensure_tables(FEATURE_TABLES)
    provider, model, prompt_version = _identity(s)
    chunks: list[Chunk] = []
    estimates: list[float] = []
    prices = load_prices(s.price_table) if s.feature_provider != "offline" else None
    for modality in ("image", "video"):
        todo = _pending(ctx, modality, provider, model, prompt_version)
        for chunk in make_chunks(modality, list(todo["creative_id"]), s.features_chunk_size):
            chunks.append(chunk)
            if prices is not None:
                rows = todo[todo["creative_id"].isin(set(chunk["ids"]))]
                estimates.append(pending_estimate(prices, model, modality, rows, s.genai_thinking_budget))
    if prices is not None:
        # The chunks of one run call at the same time and cannot see each other's reservations: each gets a fixed
        # share of the run budget, proportional to its estimate, so together they cannot overspend it.
        for chunk, share in zip(chunks, split_budget(estimates), strict=True):
            chunk["share"] = share
    log.info("features: %d chunks pending for %s/%s", len(chunks), provider, model)
    return chunks


def extract(ctx: StageContext) -> dict[str, Any]:
    """A mapped task: the features of one chunk (its ``kind`` says image or video)."""
    if ctx.chunk is None or ctx.chunk["kind"] not in ("image", "video"):
        raise ValueError("features.extract runs on a chunk from features.plan")
    return _extract(ctx, ctx.chunk["kind"])  # type: ignore[arg-type]


def _identity(settings: Settings) -> tuple[str, str, str]:
    """(provider, model, prompt version) rows are keyed on, without building a provider client."""
    if settings.feature_provider == "offline":
        from adpipeline.features.offline import OfflineExtractor

        extractor = OfflineExtractor(settings)
        return extractor.name, extractor.model, extractor.prompt_version
    provider = get_provider(settings)
    return provider.name, provider.model, schema.PROMPT_VERSION


def _extract(ctx: StageContext, modality: Modality) -> dict[str, Any]:
    ctx.warehouse.ensure_tables(FEATURE_TABLES)
    if ctx.settings.feature_provider == "offline":
        return _offline(ctx, modality)
    return _with_model(ctx, modality, get_provider(ctx.settings))


def _pending(
    ctx: StageContext, modality: Modality, provider: str, model: str, prompt_version: str, *, reuse: bool = False
) -> Any:
    params = {"provider": provider, "model": model, "prompt_version": prompt_version}
    todo = ctx.only_chunk(ctx.warehouse.query_file(f"features/select_pending_{modality}s", params))
    if reuse and modality == "image" and len(todo):
        todo = _reuse_group_features(ctx, todo, params)
    return todo


def _reuse_group_features(ctx: StageContext, todo: Any, params: dict[str, str]) -> Any:
    """A duplicate group whose canonical moved to a better copy after it was extracted (an earlier day imported
    later) keeps one paid call: the new canonical gets the features another member already has, marked as reused,
    and no model call. Returns the pending rows left to extract."""
    found = ctx.warehouse.query_file(
        "features/select_group_features", {**params, "ids": sorted(set(todo["creative_id"]))}
    )
    if found.empty:
        return todo
    found = found.drop_duplicates("for_creative_id")  # the first member by id, for a deterministic choice
    rows = rows_from_frame(tables.ImageFeatureRow, found.drop(columns=["for_creative_id"]))
    for row, target in zip(rows, found["for_creative_id"], strict=True):
        row.reason = f"reused from {row.creative_id} (same duplicate group): no new call"
        row.creative_id = target
    ctx.warehouse.merge_rows("image_features", rows)
    log.info("features: %d new canonical images reuse their group's features", len(rows))
    return todo[~todo["creative_id"].isin(set(found["for_creative_id"]))]


LEDGER_JOURNAL = "genai_ledger_journal"
"""Bucket prefix of paid calls' ledger rows not yet MERGEd into ``genai_usage`` (one object per call id)."""


class _Writer:
    """Buffers feature rows and ledger rows and MERGEs them every ``FLUSH_EVERY`` outcomes.

    With ``journal``, each ledger row of a paid call is first written to the bucket (``LEDGER_JOURNAL/<call_id>``)
    and removed once MERGEd: a task killed between a paid answer and its flush leaves the row there, and the next
    features task MERGEs it (:func:`recover_ledger`), so a paid call always reaches the ledger at its real cost."""

    def __init__(self, ctx: StageContext, modality: Modality, *, journal: bool = False) -> None:
        self.ctx, self.table, self.journal = ctx, f"{modality}_features", journal
        self.rows: list[Any] = []
        self.usage: list[tables.GenAIUsage] = []
        self.counts: dict[str, int] = {}

    def add(self, row: Any, usage: Sequence[tables.GenAIUsage] = ()) -> None:
        if self.journal:
            for call in usage:
                self.ctx.bucket.put_bytes(_journal_key(call.call_id), call.model_dump_json().encode())
        self.rows.append(row)
        self.usage.extend(usage)
        self.counts[row.status] = self.counts.get(row.status, 0) + 1
        if len(self.rows) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.usage:
            self.ctx.warehouse.merge_rows("genai_usage", self.usage)
            if self.rows:
                fault_point("features.usage_written")  # the calls are in the ledger, their rows not written yet
        if self.rows:
            self.ctx.warehouse.merge_rows(self.table, self.rows)
        if self.journal:
            for call in self.usage:
                self.ctx.bucket.delete(_journal_key(call.call_id))
        self.rows, self.usage = [], []


def _journal_key(call_id: str) -> str:
    return f"{LEDGER_JOURNAL}/{hashlib.sha256(call_id.encode()).hexdigest()}.json"


def recover_ledger(ctx: StageContext) -> int:
    """MERGE the ledger rows an earlier features task journaled and never flushed (it was killed), then remove them.
    MERGE on ``call_id`` makes this safe beside a live task whose rows are journaled too: its flush MERGEs the same
    rows again. Returns the rows recovered."""
    keys = list(ctx.bucket.list(LEDGER_JOURNAL))
    if not keys:
        return 0
    rows: list[tables.GenAIUsage] = []
    for key in keys:
        try:
            rows.append(tables.GenAIUsage.model_validate_json(ctx.bucket.get_bytes(key)))
        except FileNotFoundError:  # its task flushed it meanwhile
            continue
        except ValueError as exc:  # cut short by a kill mid-write: the call's row cannot be read back
            log.warning("ledger journal %s unreadable (%s); removed", key, type(exc).__name__)
    if rows:
        ctx.warehouse.merge_rows("genai_usage", rows)
        log.info("recovered %d ledger rows of paid calls an earlier task did not write", len(rows))
    for key in keys:
        ctx.bucket.delete(key)
    return len(rows)


# --- offline ------------------------------------------------------------------------------------------------------
def _offline(ctx: StageContext, modality: Modality) -> dict[str, Any]:
    from adpipeline.features.offline import OfflineExtractor

    extractor = OfflineExtractor(ctx.settings)
    todo = _pending(ctx, modality, extractor.name, extractor.model, extractor.prompt_version, reuse=True)
    if modality == "image" and len(todo):
        extractor.face_counter = _face_counter(ctx.settings)
    writer = _Writer(ctx, modality)
    for item in todo.itertuples(index=False):
        started = time.monotonic()
        row: tables.ImageFeatureRow | tables.VideoFeatureRow
        if modality == "image":
            stored = getattr(item, "ocr_text", None)  # the text grouping read: never read twice
            row = extractor.extract_image(
                ctx.bucket.get_bytes(_blob_key(ctx, item.blob_path)),
                item.creative_id,
                ocr_text=stored if isinstance(stored, str) else None,
            )
        else:
            has_audio = None if item.has_audio is None or item.has_audio != item.has_audio else bool(item.has_audio)
            with ctx.bucket.local_file(_blob_key(ctx, item.blob_path)) as path:
                row = extractor.extract_video(path, item.creative_id, has_audio=has_audio)
        writer.add(row, [_offline_ledger(ctx, modality, row, started)])
        if len(extractor.texts_read) >= FLUSH_EVERY:
            _store_texts(ctx, extractor)
    writer.flush()
    _store_texts(ctx, extractor)
    return _finish(ctx, modality, writer, provider=extractor.name, model=extractor.model)


def _store_texts(ctx: StageContext, extractor: Any) -> None:
    """What the extractor read is stored as grouping stores its reads (``image_hashes.ocr_text``), so a later
    grouping pass never reads that image again."""
    if extractor.texts_read:
        from adpipeline.stages.media import store_texts

        store_texts(ctx, extractor.texts_read)
        extractor.texts_read = {}


def _face_counter(settings: Settings) -> Any:
    """Counts faces in an image with the configured face engine (loaded once per process); None when the engine
    cannot load, so ``face_count`` stays null instead of failing the features."""
    from adpipeline.faces.engine import FaceEngineUnavailable
    from adpipeline.faces.video import count_faces, shared_engine

    try:
        engine = shared_engine(settings)
    except FaceEngineUnavailable as exc:
        log.warning("face_count stays null: %s", exc)
        return None
    return lambda rgb: count_faces(engine, rgb, settings)


def _offline_ledger(ctx: StageContext, modality: Modality, row: Any, started: float) -> tables.GenAIUsage:
    return tables.GenAIUsage(
        call_id=uuid.uuid4().hex,
        creative_id=row.creative_id,
        modality=modality,
        provider=row.provider,
        model=row.model,
        mode="offline",
        prompt_version=row.prompt_version,
        latency_ms=int((time.monotonic() - started) * 1000),
        status=row.status,
        reason=row.reason,
        run_id=ctx.run_id,
        called_at=dt.datetime.now(dt.UTC),
    )


# --- model providers ----------------------------------------------------------------------------------------------
def _with_model(ctx: StageContext, modality: Modality, provider: LLMProvider) -> dict[str, Any]:
    s = ctx.settings
    prices = load_prices(s.price_table)
    prices.price(provider.model)  # an unknown model is an error before any call
    recovered = recover_ledger(ctx)  # before the budget: what a killed task paid counts against this run
    todo = _pending(ctx, modality, provider.name, provider.model, schema.PROMPT_VERSION, reuse=True)
    budget = _task_budget(ctx, modality, provider, prices, todo)
    runner = Runner(
        provider=provider,
        prices=prices,
        run_id=ctx.run_id,
        limiter=RateLimiter(task_share(s.genai_rpm, s.genai_pool_slots), task_share(s.genai_tpm, s.genai_pool_slots)),
        budget=budget,
        cache=FeatureCache(ctx.bucket, provider.name, provider.model, schema.PROMPT_VERSION) if s.genai_cache else None,
        max_retries=s.genai_max_retries,
        backoff_s=s.genai_backoff_s,
        concurrency=s.genai_concurrency,
        thinking_budget=s.genai_thinking_budget,
    )
    writer = _Writer(ctx, modality, journal=True)
    with ExitStack() as stack:
        items = [_media_item(ctx, stack, modality, row) for row in todo.itertuples(index=False)]
        to_call: list[MediaItem] = []
        for item in items:
            hit = runner.from_cache(item)
            if hit is None:
                to_call.append(item)
            else:
                writer.add(hit.row)
        estimated = sum(runner.estimate(item)[1] for item in to_call)
        log.info(
            "%s: %d %ss to call with %s/%s, estimated $%.4f online (this task may spend $%.4f of the run's $%.2f; "
            "$%.4f already spent on these items by this run)",
            ctx.run_id,
            len(to_call),
            modality,
            provider.name,
            provider.model,
            estimated,
            budget.limit,
            s.run_budget_usd,
            budget.committed,
        )
        batched = 0
        if _use_batch(s, provider, len(to_call)):
            batched, to_call = _submit_batches(ctx, runner, provider, to_call, writer)

        def done(outcome: Outcome) -> None:
            writer.add(outcome.row, outcome.usage)

        fault_point("features.calling")  # items read, cache checked, calls about to start
        runner.run(to_call, on_done=done, cache_checked=True)
        writer.flush()
    cached = len(items) - len(to_call) - batched
    return _finish(
        ctx,
        modality,
        writer,
        provider=provider.name,
        model=provider.model,
        batched=batched,
        cached=cached,
        estimated_usd=round(estimated, 6),
        ledger_rows_recovered=recovered,
    )


def _task_budget(ctx: StageContext, modality: Modality, provider: LLMProvider, prices: Any, todo: Any) -> Budget:
    """This task's budget: the image and video tasks of one run call at the same time, so each gets a share of the
    run budget proportional to its pending work's estimate (see ``budget.split_budget`` and ``budget.task_budget``)."""
    s = ctx.settings
    if ctx.chunk is not None and "share" in ctx.chunk:  # a mapped task: the share fixed by plan()
        return task_budget(
            ctx.warehouse,
            ctx.run_id,
            s.run_budget_usd,
            modality=modality,
            share=ctx.chunk["share"],
            creative_ids=ctx.chunk["ids"],
        )
    other: Modality = "video" if modality == "image" else "image"
    others = _pending(ctx, other, provider.name, provider.model, schema.PROMPT_VERSION)
    estimates = [
        pending_estimate(prices, provider.model, modality, todo, s.genai_thinking_budget),
        pending_estimate(prices, provider.model, other, others, s.genai_thinking_budget),
    ]
    share = split_budget(estimates)[0]
    return task_budget(ctx.warehouse, ctx.run_id, s.run_budget_usd, modality=modality, share=share)


def _use_batch(s: Settings, provider: LLMProvider, count: int) -> bool:
    if not provider.supports_batch or count == 0:
        return False
    return s.genai_mode == "batch" or (s.genai_mode == "auto" and count >= s.genai_batch_min_items)


def _submit_batches(
    ctx: StageContext, runner: Runner, provider: Any, items: list[MediaItem], writer: _Writer
) -> tuple[int, list[MediaItem]]:
    """Submit what fits the budget and the inline size as batch jobs; returns (submitted, items left for online)."""
    from adpipeline.features import batch

    s = ctx.settings
    online = [i for i in items if i.modality == "video" and i.size_bytes > s.gemini_inline_max_bytes]
    chosen: list[MediaItem] = []
    for item in items:
        if item in online:
            continue
        cost = runner.estimate(item, "batch")[1]
        if runner.budget.reserve(cost):
            chosen.append(item)
        else:
            writer.add(
                runner.status_row(
                    item,
                    "skipped_budget",
                    f"estimated ${cost:.4f} (batch) does not fit this task's share of the run budget "
                    f"(${runner.budget.limit:.4f})",
                )
            )
    if not chosen:
        return 0, online
    try:
        jobs = batch.submit(
            provider,
            chosen,
            prices=runner.prices,
            estimate=lambda item: runner.estimate(item, "batch")[1],
            run_id=ctx.run_id,
            max_bytes=s.genai_batch_max_bytes,
            now=dt.datetime.now(dt.UTC),
        )
    except ProviderError as exc:
        log.warning("batch submission failed (%s); calling online instead", exc.reason)
        for item in chosen:
            runner.budget.settle(runner.estimate(item, "batch")[1], 0.0)
        return 0, online + chosen
    ctx.warehouse.merge_rows("genai_batches", jobs)
    for job in jobs:
        for creative_id in job.creative_ids:
            writer.add(
                schema.status_row(
                    job.modality,
                    creative_id=creative_id,
                    provider=provider.name,  # type: ignore[call-overload]
                    model=provider.model,
                    status="submitted",
                    reason=f"in {job.batch_id}",
                )
            )
    writer.flush()
    return sum(len(j.creative_ids) for j in jobs), online


def has_open_batches(ctx: StageContext) -> bool:
    """Whether any Gemini Batch job of ours is still to be collected (the batch DAG's short-circuit)."""
    if ctx.settings.feature_provider != "gemini":
        return False
    ctx.warehouse.ensure_tables(FEATURE_TABLES)
    return not ctx.warehouse.query_file("features/select_open_batches", {}).empty


def collect_batches(ctx: StageContext) -> bool:
    """Sensor: collect every finished batch job of the configured provider; True when none is left running."""
    return _collect(ctx) == 0


def finish(ctx: StageContext, summaries: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The reduce step after the mapped chunks: their counts added up (each chunk already wrote its rows)."""
    totals: dict[str, int] = {}
    for part in summaries or ():
        for status, n in (part or {}).get("statuses", {}).items():
            totals[status] = totals.get(status, 0) + int(n)
    return summary("features", ctx.window, chunks=len(summaries or ()), statuses=totals)


def batches(ctx: StageContext) -> dict[str, Any]:
    """One collection pass (direct runs): what is finished is written, what still runs is left for later."""
    waiting = _collect(ctx)
    return summary("features.batches", ctx.window, still_running=waiting)


def _collect(ctx: StageContext) -> int:
    """Collect the finished batch jobs; returns how many are still running."""
    if ctx.settings.feature_provider != "gemini":
        return 0
    from adpipeline.features import batch

    ctx.warehouse.ensure_tables(FEATURE_TABLES)
    open_jobs = rows_from_frame(tables.GenAIBatch, ctx.warehouse.query_file("features/select_open_batches", {}))
    if not open_jobs:
        return 0
    provider: Any = get_provider(ctx.settings)
    prices = load_prices(ctx.settings.price_table)
    timeout = dt.timedelta(hours=ctx.settings.genai_batch_timeout_h)
    waiting = 0
    for job in open_jobs:
        now = dt.datetime.now(dt.UTC)
        done = batch.collect(provider, job, prices=prices, run_id=ctx.run_id, now=now, timeout=timeout)
        if done is None:
            waiting += 1
            continue
        ctx.warehouse.merge_rows("genai_usage", done.usage)
        ctx.warehouse.merge_rows(f"{job.modality}_features", done.rows)
        ctx.warehouse.merge_rows("genai_batches", [done.batch])
        cost = done.batch.cost_usd or 0.0
        log.info("collected %s: %s, %d rows, $%.4f", job.batch_id, done.batch.state, len(done.rows), cost)
    return waiting


# --- inputs -------------------------------------------------------------------------------------------------------
def _media_item(ctx: StageContext, stack: ExitStack, modality: Modality, row: Any) -> MediaItem:
    key = _blob_key(ctx, row.blob_path)
    size = int(row.size_bytes) if row.size_bytes == row.size_bytes and row.size_bytes is not None else 0
    if modality == "image":
        data, mime = _image_payload(ctx.bucket.get_bytes(key), row.image_format)
        return MediaItem(
            creative_id=row.creative_id,
            modality="image",
            sha256=row.sha256,
            mime_type=mime,
            data=data,
            size_bytes=len(data),
            width=_int(row.width),
            height=_int(row.height),
        )
    has_audio = None if row.has_audio is None or row.has_audio != row.has_audio else bool(row.has_audio)
    return MediaItem(
        creative_id=row.creative_id,
        modality="video",
        sha256=row.sha256,
        mime_type="video/mp4",
        path=stack.enter_context(ctx.bucket.local_file(key)),
        size_bytes=size,
        width=_int(row.width),
        height=_int(row.height),
        duration_s=float(row.duration_s) if row.duration_s == row.duration_s and row.duration_s is not None else None,
        has_audio=has_audio,
    )


def _int(value: Any) -> int | None:
    return int(value) if value is not None and value == value else None


def _image_payload(data: bytes, image_format: str | None) -> tuple[bytes, str]:
    """Bytes and MIME type a model accepts: JPEG, PNG and WebP as they are; GIF (first frame) and BMP as PNG."""
    fmt = (image_format or "").upper()
    if fmt in _IMAGE_MIME:
        return data, _IMAGE_MIME[fmt]
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        out = io.BytesIO()
        image.convert("RGBA" if "A" in image.getbands() else "RGB").save(out, format="PNG")
    return out.getvalue(), "image/png"


def _finish(ctx: StageContext, modality: Modality, writer: _Writer, **extra: Any) -> dict[str, Any]:
    counts = writer.counts
    failed = sum(n for status, n in counts.items() if status not in ("ok", "submitted", "skipped_budget", "blocked"))
    total = sum(counts.values())
    check_failure_share(f"features.{modality}s", failed, total, ctx.settings.max_failure_share)
    return summary(f"features.{modality}s", ctx.window, extracted=total, failed=failed, statuses=counts, **extra)
