"""Gemini Batch mode: half the price, answered within hours. Submit, then collect later without holding a worker.

:func:`submit` sends items as inlined requests (split so one job's payload stays under ``genai_batch_max_bytes``)
and returns one ``genai_batches`` row per job; the items get ``submitted`` feature rows so no other run sends them
again. :func:`collect` looks at one job: still running → ``None``; finished → validated feature rows and one
``genai_usage`` row per answer at the batch price (call ids ``<batch>/<index>``, so collecting twice writes the
same rows); failed, cancelled or past ``genai_batch_timeout_h`` → ``failed`` rows that the next run picks up.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from adpipeline import tables
from adpipeline.features import schema
from adpipeline.features.gemini import GeminiProvider, answer_from
from adpipeline.features.llm import MediaItem, classify, parse_answer
from adpipeline.features.pricing import PriceTable, TokenUsage

log = logging.getLogger("adpipeline.features")

_RUNNING = ("QUEUED", "PENDING", "RUNNING", "UPDATING", "PAUSED", "CANCELLING", "UNSPECIFIED")


def _state(job: Any) -> str:
    value = getattr(job.state, "value", job.state) or "UNSPECIFIED"
    return str(value).removeprefix("JOB_STATE_").removeprefix("BATCH_STATE_")


def _chunks(items: Sequence[MediaItem], max_bytes: int) -> list[list[MediaItem]]:
    """Consecutive chunks whose base64 payload stays under ``max_bytes`` (one oversized item goes alone)."""
    chunks: list[list[MediaItem]] = []
    size = 0
    for item in items:
        item_bytes = (item.size_bytes or len(item.read())) * 4 // 3 + 4096
        if not chunks or size + item_bytes > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item_bytes
    return chunks


def submit(
    provider: GeminiProvider,
    items: Sequence[MediaItem],
    *,
    prices: PriceTable,
    estimate: Callable[[MediaItem], float],
    run_id: str,
    max_bytes: int,
    now: dt.datetime,
) -> list[tables.GenAIBatch]:
    """Create batch jobs for ``items`` (all of one modality); returns their ``genai_batches`` rows."""
    from google.genai import types

    prices.price(provider.model)
    jobs = []
    for number, chunk in enumerate(_chunks(items, max_bytes)):
        modality = chunk[0].modality
        prompt = schema.render_prompt(modality)
        config = provider.config(schema.response_model(modality))
        requests = [
            types.InlinedRequest(
                contents=[
                    types.Content(
                        role="user",
                        parts=[
                            types.Part.from_bytes(data=item.read(), mime_type=item.mime_type),
                            types.Part(text=prompt),
                        ],
                    )
                ],
                config=config,
                metadata={"creative_id": item.creative_id},
            )
            for item in chunk
        ]
        display = f"adpipeline-{modality}-{run_id}-{number}"[:120]
        try:
            job = provider.client.batches.create(
                model=provider.model, src=requests, config=types.CreateBatchJobConfig(display_name=display)
            )
        except Exception as exc:
            raise classify(exc) from exc
        log.info("submitted %s with %d %s requests", job.name, len(chunk), modality)
        jobs.append(
            tables.GenAIBatch(
                batch_id=job.name,
                modality=modality,
                provider=provider.name,
                model=provider.model,
                prompt_version=schema.PROMPT_VERSION,
                creative_ids=[item.creative_id for item in chunk],
                state="submitted",
                estimated_cost_usd=round(sum(estimate(item) for item in chunk), 6),
                submitted_run_id=run_id,
                submitted_at=now,
            )
        )
    return jobs


@dataclass
class Collected:
    batch: tables.GenAIBatch
    rows: list[tables.ImageFeatureRow | tables.VideoFeatureRow] = field(default_factory=list)
    usage: list[tables.GenAIUsage] = field(default_factory=list)


def collect(
    provider: GeminiProvider,
    batch: tables.GenAIBatch,
    *,
    prices: PriceTable,
    run_id: str,
    now: dt.datetime,
    timeout: dt.timedelta,
) -> Collected | None:
    """The outcome of one submitted job, or None while it is still running."""
    try:
        job = provider.client.batches.get(name=batch.batch_id)
    except Exception as exc:
        raise classify(exc) from exc
    state = _state(job)
    if state in _RUNNING:
        if now - batch.submitted_at <= timeout:
            return None
        try:
            provider.client.batches.cancel(name=batch.batch_id)
        except Exception as exc:  # cancelling is a courtesy; the items are redone either way
            log.warning("could not cancel %s: %s", batch.batch_id, classify(exc).reason)
        return _failed(batch, "expired", f"batch still {state} after {timeout}", run_id)
    if state not in ("SUCCEEDED", "PARTIALLY_SUCCEEDED"):
        message = getattr(getattr(job, "error", None), "message", None) or ""
        return _failed(batch, "failed", f"batch job {state} {message}".strip(), run_id)
    responses = list(getattr(job.dest, "inlined_responses", None) or []) if job.dest else []
    return _collected(batch, responses, prices, run_id, now)


def _failed(batch: tables.GenAIBatch, state: str, reason: str, run_id: str) -> Collected:
    rows = [_status(batch, cid, "failed", reason) for cid in batch.creative_ids]
    done = batch.model_copy(update={"state": state, "reason": reason, "collected_run_id": run_id, "cost_usd": 0.0})
    return Collected(done, rows)


def _collected(
    batch: tables.GenAIBatch, responses: list[Any], prices: PriceTable, run_id: str, now: dt.datetime
) -> Collected:
    modality = batch.modality
    response_model = schema.response_model(modality)  # type: ignore[arg-type]
    out = Collected(batch)
    seen: set[str] = set()
    for index, inlined in enumerate(responses):
        creative_id = (inlined.metadata or {}).get("creative_id") if inlined.metadata else None
        creative_id = creative_id or (batch.creative_ids[index] if index < len(batch.creative_ids) else None)
        if creative_id is None:
            continue
        seen.add(creative_id)
        usage, status, reason = TokenUsage(), "ok", None
        if inlined.error is not None:
            status, reason = "failed", f"batch request error: {getattr(inlined.error, 'message', inlined.error)}"
            out.rows.append(_status(batch, creative_id, status, reason))
        else:
            answer = answer_from(inlined.response, batch.model)
            usage = answer.usage
            if answer.blocked:
                status, reason = "blocked", f"provider refused: {answer.blocked}"
                out.rows.append(_status(batch, creative_id, status, reason))
            else:
                try:
                    parsed = parse_answer(answer.text, response_model)
                except (ValidationError, ValueError) as exc:
                    status, reason = "invalid_response", f"invalid batch answer: {str(exc)[:300]}"
                    out.rows.append(_status(batch, creative_id, status, reason, raw=(answer.text or "")[:20000]))
                else:
                    out.rows.append(
                        schema.to_row(  # type: ignore[call-overload]
                            modality,
                            parsed,
                            creative_id=creative_id,
                            provider=batch.provider,
                            model=batch.model,
                            prompt_version=batch.prompt_version,
                        )
                    )
        out.usage.append(
            tables.GenAIUsage(
                call_id=f"{batch.batch_id}/{index}",
                creative_id=creative_id,
                modality=modality,
                provider=batch.provider,
                model=batch.model,
                mode="batch",
                prompt_version=batch.prompt_version,
                **usage.as_columns(),
                cost_usd=prices.cost(batch.model, usage, "batch"),
                attempts=1,
                status=status,
                reason=reason,
                price_version=prices.version,
                batch_id=batch.batch_id,
                run_id=run_id,
                called_at=now,
            )
        )
    for creative_id in batch.creative_ids:
        if creative_id not in seen:
            out.rows.append(_status(batch, creative_id, "failed", "no answer in the batch output"))
    out.batch = batch.model_copy(
        update={
            "state": "collected",
            "collected_run_id": run_id,
            "cost_usd": round(sum(u.cost_usd for u in out.usage), 8),
        }
    )
    return out


def _status(batch: tables.GenAIBatch, creative_id: str, status: str, reason: str, raw: str | None = None) -> Any:
    return schema.status_row(  # type: ignore[call-overload]
        batch.modality,
        creative_id=creative_id,
        provider=batch.provider,
        model=batch.model,
        status=status,
        reason=reason,
        prompt_version=batch.prompt_version,
        raw_response=raw,
    )
