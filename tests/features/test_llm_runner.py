"""The model runner without HTTP: retries, repair, budget, cache, rate limiter, ledger rows, price table."""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from adpipeline.bucket import Bucket
from adpipeline.features import pricing, schema
from adpipeline.features.budget import Budget
from adpipeline.features.llm import (
    Answer,
    FeatureCache,
    MediaItem,
    Permanent,
    RateLimited,
    RateLimiter,
    Runner,
    Transient,
    classify,
    parse_answer,
)
from adpipeline.features.pricing import PriceTableError, TokenUsage, load_prices


def valid_answer(modality: str = "image") -> dict[str, Any]:
    """Every field answered: empty lists for lists, null for the rest, one plain value to show it is kept."""
    model = schema.response_model(modality)
    answer = {name: [] if "list" in str(f.annotation) else None for name, f in model.model_fields.items()}
    answer["product_type"] = "running shoe"
    return answer


class FakeProvider:
    """Plays a script of results: an Answer, an exception, or a dict (answered as JSON text)."""

    name = "gemini"
    model = "gemini-2.5-flash"
    supports_batch = False

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.prompts: list[str] = []
        self.lock = threading.Lock()

    def media(self, item: MediaItem) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext(item.creative_id)

    def generate(self, media: Any, prompt: str, response_model: Any) -> Answer:
        with self.lock:
            self.prompts.append(prompt)
            step = self.script.pop(0) if self.script else valid_answer()
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Answer):
            return step
        text = step if isinstance(step, str) else json.dumps(step)
        return Answer(
            text=text,
            usage=TokenUsage(input_text_tokens=1000, input_image_tokens=258, output_tokens=500),
            model="gemini-2.5-flash-001",
        )


def item(n: int = 1, sha: str | None = None) -> MediaItem:
    return MediaItem(
        creative_id=f"img_{n}",
        modality="image",
        sha256=sha or f"{n:064x}",
        mime_type="image/png",
        data=b"\x89PNG fake",
        size_bytes=9,
        width=1080,
        height=1080,
    )


def runner(provider: FakeProvider, *, budget: float = 10.0, cache: FeatureCache | None = None) -> Runner:
    sleeps: list[float] = []
    r = Runner(
        provider=provider,
        prices=load_prices(),
        run_id="run1",
        limiter=RateLimiter(1e9),
        budget=Budget(budget),
        cache=cache,
        max_retries=3,
        backoff_s=0.01,
        sleep=sleeps.append,
    )
    r.sleeps = sleeps  # type: ignore[attr-defined]
    return r


def test_ok_row_and_ledger() -> None:
    out = runner(FakeProvider([valid_answer()])).extract(item())
    assert out.row.status == "ok" and out.row.provider == "gemini" and out.row.model == "gemini-2.5-flash"
    [call] = out.usage
    assert call.status == "ok" and call.attempts == 1 and call.model == "gemini-2.5-flash-001"
    assert call.input_image_tokens == 258 and call.output_tokens == 500 and call.mode == "online"
    assert call.cost_usd == pytest.approx((1258 * 0.30 + 500 * 2.50) / 1e6)
    assert call.price_version == load_prices().version and call.modality == "image"


def test_retries_429_with_retry_after_then_succeeds() -> None:
    provider = FakeProvider([RateLimited("HTTP 429", retry_after=1.5), Transient("HTTP 503"), valid_answer()])
    r = runner(provider)
    out = r.extract(item())
    assert out.row.status == "ok"
    assert out.usage[0].attempts == 3
    assert r.sleeps[0] == 1.5 and len(r.sleeps) == 2  # type: ignore[attr-defined]


def test_gives_up_after_max_retries_with_a_status_row() -> None:
    r = runner(FakeProvider([RateLimited("HTTP 429")] * 10))
    out = r.extract(item())
    assert out.row.status == "rate_limited" and "429" in out.row.reason
    assert out.usage[0].attempts == 4 and out.usage[0].cost_usd == 0


def test_no_retry_on_other_4xx() -> None:
    provider = FakeProvider([Permanent("HTTP 400: bad request"), valid_answer()])
    out = runner(provider).extract(item())
    assert out.row.status == "failed" and "400" in out.row.reason
    assert len(provider.prompts) == 1


def test_one_repair_then_invalid_response_with_raw_text_kept() -> None:
    provider = FakeProvider(["```json {oops", {"product_type": 3}])
    out = runner(provider).extract(item())
    assert out.row.status == "invalid_response"
    assert out.row.raw_response == json.dumps({"product_type": 3})
    assert len(provider.prompts) == 2 and "could not be used" in provider.prompts[1]
    assert [c.status for c in out.usage] == ["ok", "invalid_response"]


def test_repair_succeeds() -> None:
    provider = FakeProvider(["not json", valid_answer()])
    out = runner(provider).extract(item())
    assert out.row.status == "ok" and len(out.usage) == 2


def test_blocked_answer_is_a_status_and_is_not_repaired() -> None:
    blocked = Answer(text=None, usage=TokenUsage(input_text_tokens=10), model="m", blocked="prompt blocked (SAFETY)")
    provider = FakeProvider([blocked])
    out = runner(provider).extract(item())
    assert out.row.status == "blocked" and "SAFETY" in out.row.reason
    assert len(provider.prompts) == 1


def test_budget_skips_items_that_do_not_fit() -> None:
    r = runner(FakeProvider([]), budget=0.0025)
    outcomes = r.run([item(i) for i in range(5)])
    statuses = sorted(o.row.status for o in outcomes)
    assert "skipped_budget" in statuses and "ok" in statuses
    assert sum(c.cost_usd for o in outcomes for c in o.usage) <= 0.0025


def test_cache_means_never_paying_twice(tmp_path: Path) -> None:
    cache = FeatureCache(Bucket(str(tmp_path)), "gemini", "gemini-2.5-flash", schema.PROMPT_VERSION)
    provider = FakeProvider([valid_answer()])
    first = runner(provider, cache=cache).extract(item(1, sha="ab" * 32))
    again = runner(provider, cache=cache).extract(item(2, sha="ab" * 32))
    assert first.row.status == again.row.status == "ok" and again.cached and again.usage == []
    assert len(provider.prompts) == 1
    assert again.row.creative_id == "img_2"


def test_parse_answer_is_strict() -> None:
    model = schema.response_model("image")
    good = valid_answer()
    assert parse_answer(json.dumps(good), model)
    assert parse_answer("```json\n" + json.dumps(good) + "\n```", model)
    with pytest.raises(ValueError):
        parse_answer(json.dumps({**good, "surprise": 1}), model)
    missing = dict(good)
    missing.pop(next(iter(missing)))
    with pytest.raises(ValueError):
        parse_answer(json.dumps(missing), model)


def test_rate_limiter_spaces_requests_evenly() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    limiter = RateLimiter(rpm=60, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert now[0] == pytest.approx(4.0)  # 1 per second, the first at once


def test_rate_limiter_counts_tokens() -> None:
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    limiter = RateLimiter(rpm=1e6, tpm=6000, clock=lambda: now[0], sleep=sleep)
    limiter.acquire(3000)
    limiter.acquire(3000)
    limiter.acquire(3000)
    assert now[0] == pytest.approx(60.0)  # 9,000 tokens at 6,000 a minute: the third waits for a minute's worth


def test_price_table_and_costs(tmp_path: Path) -> None:
    table = load_prices()
    assert table.price("gemini-2.5-flash-lite-001") is table.models["gemini-2.5-flash-lite"]
    usage = TokenUsage(input_text_tokens=1_000_000, output_tokens=1_000_000)
    assert table.cost("gemini-2.5-flash", usage) == pytest.approx(2.80)
    assert table.cost("gemini-2.5-flash", usage, "batch") == pytest.approx(1.40)
    long = TokenUsage(input_text_tokens=300_000)
    assert table.cost("gemini-2.5-pro", long) == pytest.approx(0.75)  # the >200k tier: 2.50 / M
    with pytest.raises(PriceTableError, match="no entry for model 'mystery-model'"):
        table.price("mystery-model")
    bad = tmp_path / "prices.toml"
    bad.write_text("models = 3")
    with pytest.raises(PriceTableError):
        load_prices(bad)


def test_unknown_model_fails_before_any_call() -> None:
    provider = FakeProvider([])
    provider.model = "mystery-model"
    with pytest.raises(PriceTableError):
        runner(provider).run([item()])
    assert provider.prompts == []


def test_estimates_follow_the_tile_and_second_arithmetic() -> None:
    assert pricing.image_tokens(300, 300) == 258
    assert pricing.image_tokens(1080, 1920) == 2 * 3 * 258
    assert pricing.video_tokens(10.2, True) == (11 * 263, 11 * 32)
    assert pricing.video_tokens(10, False) == (10 * 263, 0)


def test_classify_sdk_errors() -> None:
    class Err(Exception):
        def __init__(self, code: int, headers: dict[str, str] | None = None) -> None:
            self.code = code
            self.response = type("R", (), {"headers": headers or {}})()

    limited = classify(Err(429, {"retry-after": "7"}))
    assert isinstance(limited, RateLimited) and limited.retry_after == 7.0
    assert isinstance(classify(Err(503)), Transient)
    assert isinstance(classify(Err(404)), Permanent)
    assert isinstance(classify(TimeoutError()), Transient)


def test_price_table_tiers_cached_audio_and_retired_models() -> None:
    table = load_prices()
    pro = table.price("gemini-2.5-pro")
    cached = TokenUsage(input_text_tokens=100_000, cached_tokens=100_000)
    assert pro.cost(cached) == pytest.approx(0.0125)  # $0.125 / M cached at <= 200k
    long_cached = TokenUsage(input_text_tokens=300_000, cached_tokens=300_000)
    assert pro.cost(long_cached) == pytest.approx(0.075)  # $0.25 / M cached above 200k
    long_out = TokenUsage(input_text_tokens=250_000, output_tokens=1_000_000)
    assert pro.cost(long_out) == pytest.approx(0.625 + 15.0)
    flash = table.price("gemini-2.5-flash")
    audio = TokenUsage(input_text_tokens=1_000_000, input_audio_tokens=1_000_000, cached_tokens=1_500_000)
    # 1M text cached at 0.03, then 0.5M audio cached at 0.10 and 0.5M audio uncached at 1.00
    assert flash.cost(audio) == pytest.approx(0.03 + 0.05 + 0.50)
    with pytest.raises(PriceTableError, match="retired on 2026-06-01"):
        table.price("gemini-2.0-flash-001")
    assert table.price("gemini-2.0-flash", include_retired=True).input == 0.10  # old ledger rows stay priceable
    assert "gemini-2.0-flash" not in table.current() and "gemini-3.8-flash" in table.current()
    no_cache_rate = table.price("gemini-3.5-flash")  # cache rate not published: billed as uncached, never less
    assert no_cache_rate.cost(TokenUsage(input_text_tokens=10, cached_tokens=10)) == no_cache_rate.cost(
        TokenUsage(input_text_tokens=10)
    )
