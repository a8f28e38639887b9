"""Model-call faults with the real SDKs against the local stubs: retry delays as each provider sends them, errors
classified by type and status, the thinking budget, and one run budget over all the tasks of a DAG run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from adpipeline import tables
from adpipeline.features import schema
from adpipeline.features.budget import Budget, split_budget, task_budget
from adpipeline.features.gemini import GeminiProvider
from adpipeline.features.langchain_chat import LangChainProvider
from adpipeline.features.llm import (
    MediaItem,
    Permanent,
    RateLimited,
    RateLimiter,
    Runner,
    Transient,
    UnreadableResponse,
    classify,
    retry_delay,
)
from adpipeline.features.pricing import load_prices
from adpipeline.settings import Settings
from adpipeline.stages import features
from adpipeline.stages.context import StageContext
from adpipeline.testing import GeminiStub, OpenAIStub
from adpipeline.testing._schema_instance import proto_field
from adpipeline.window import Window
from tests.features.test_features_offline import make_video
from tests.features.test_model_providers import (
    DAY,
    N_IMAGES,
    _png,
    build_home,
    gemini_settings,
    run,
    table,
)


def image(n: int = 1) -> MediaItem:
    data = _png(n)
    return MediaItem(
        f"img_{n}", "image", f"{n:064x}", "image/png", data=data, size_bytes=len(data), width=440, height=300
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return make_video(tmp_path_factory.mktemp("v") / "v.mp4", [((200, 30, 30), "BUY NOW", 1.0)], fps=5).read_bytes()


def runner_for(provider: Any, **overrides: Any) -> Runner:
    sleeps: list[float] = []
    options: dict[str, Any] = {
        "provider": provider,
        "prices": load_prices(),
        "run_id": "run1",
        "limiter": RateLimiter(1e9),
        "budget": Budget(10.0),
        "max_retries": 3,
        "backoff_s": 0.01,
        "sleep": sleeps.append,
        **overrides,
    }
    runner = Runner(**options)
    runner.sleeps = sleeps  # type: ignore[attr-defined]
    return runner


@pytest.fixture()
def gemini() -> Any:
    with GeminiStub() as stub:
        yield stub


@pytest.fixture()
def oai() -> Any:
    with OpenAIStub() as stub:
        yield stub


def gemini_provider(stub: GeminiStub, **overrides: Any) -> GeminiProvider:
    return GeminiProvider(Settings(_env_file=None, **gemini_settings(stub, **overrides)))


def azure_provider(stub: OpenAIStub, **overrides: Any) -> LangChainProvider:
    settings = Settings(
        _env_file=None,
        feature_provider="langchain",
        langchain_model="azure_openai:gpt-4o-mini",
        langchain_base_url=stub.url,
        langchain_api_key="test-key",
        **overrides,
    )
    return LangChainProvider(settings)


# --- 7: the retry delay as each provider sends it ----------------------------------------------------------------
def test_gemini_429_delay_is_read_from_the_body(gemini: GeminiStub) -> None:
    gemini.fail("429", retry_after=7, endpoint="generate")
    gemini.fail("429", retry_after=0.5, endpoint="generate")
    runner = runner_for(gemini_provider(gemini))
    out = runner.extract(image())
    assert out.row.status == "ok" and out.usage[0].attempts == 3
    assert runner.sleeps == [7.0, 0.5]  # type: ignore[attr-defined]  # RetryInfo.retryDelay, no header sent


def test_azure_429_delay_is_read_from_the_headers(oai: OpenAIStub) -> None:
    oai.fail("429", retry_after=3)
    runner = runner_for(azure_provider(oai))
    out = runner.extract(image())
    assert out.row.status == "ok" and runner.sleeps == [3.0]  # type: ignore[attr-defined]


def test_a_delay_longer_than_allowed_gives_up_at_once(gemini: GeminiStub) -> None:
    gemini.fail("429", retry_after=3600, endpoint="generate")
    runner = runner_for(gemini_provider(gemini))
    out = runner.extract(image())
    assert out.row.status == "rate_limited" and runner.sleeps == []  # type: ignore[attr-defined]
    assert gemini.count("generate") == 1


def test_retry_delay_forms() -> None:
    class Err(Exception):
        def __init__(self, headers: dict[str, str] | None = None, details: Any = None) -> None:
            self.response = httpx.Response(429, headers=headers or {})
            self.details = details

    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    assert retry_delay(Err(details={"error": {"details": [{"@type": "x.ErrorInfo"}, info]}})) == 1.5
    assert retry_delay(Err({"retry-after": "4"})) == 4.0
    assert retry_delay(Err({"retry-after-ms": "250", "retry-after": "1"})) == 0.25
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= (retry_delay(Err({"retry-after": later})) or 0) <= 31
    assert retry_delay(Err()) is None


# --- 9: classification by type and status ------------------------------------------------------------------------
def test_classify_by_type_and_status() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/x")
    for transient in (
        httpx.ReadError("reset", request=request),
        httpx.RemoteProtocolError("Server disconnected", request=request),
        httpx.ConnectError("refused", request=request),
        httpx.ReadTimeout("slow", request=request),
        ConnectionResetError(),
        TimeoutError(),
        json.JSONDecodeError("Expecting value", "<html>", 0),
        UnreadableResponse("HTTP 200 with a text/html body"),
    ):
        assert isinstance(classify(transient), Transient), transient
    wrapped = openai.APIConnectionError(request=request)
    wrapped.__cause__ = httpx.ReadError("reset", request=request)
    assert isinstance(classify(wrapped), Transient)

    class TimeoutSettingInvalid(Exception):  # a name with "Timeout" in it is not a timeout
        pass

    for permanent in (TimeoutSettingInvalid("bad"), httpx.UnsupportedProtocol("ftp://"), ValueError("Connect")):
        assert isinstance(classify(permanent), Permanent), permanent
    status = openai.InternalServerError("boom", response=httpx.Response(502, request=request), body=None)
    assert isinstance(classify(status), Transient) and "502" in classify(status).reason
    bad = openai.BadRequestError("no", response=httpx.Response(400, request=request), body=None)
    assert isinstance(classify(bad), Permanent)
    limited = openai.RateLimitError(
        "slow down", response=httpx.Response(429, headers={"retry-after": "2"}, request=request), body=None
    )
    assert isinstance(classify(limited), RateLimited) and classify(limited).retry_after == 2.0


@pytest.mark.parametrize("kind", ["reset", "garbage", "500", "slow"])
def test_transport_faults_are_retried_for_both_providers(gemini: GeminiStub, oai: OpenAIStub, kind: str) -> None:
    g = runner_for(gemini_provider(gemini, genai_timeout_s=1))
    a = runner_for(azure_provider(oai, genai_timeout_s=1))
    gemini.fail(kind, endpoint="generate", delay_s=2.5)
    oai.fail(kind, delay_s=2.5)
    for runner in (g, a):
        out = runner.extract(image())
        assert out.row.status == "ok" and out.usage[0].attempts == 2, (runner.provider.name, out.row.reason)


# --- 8: the thinking budget ----------------------------------------------------------------------------------------
def test_thinking_budget_is_sent_counted_and_holds_the_budget(gemini: GeminiStub, tmp_path: Path, clip: bytes) -> None:
    gemini.thoughts_tokens = 20_000  # a model that would think a lot if let
    settings = build_home(tmp_path, clip, **gemini_settings(gemini, genai_thinking_budget=512, run_budget_usd=0.01))
    run(settings, features.images)
    run(settings, features.videos)
    sent = [r.body["generationConfig"] for r in gemini.requests if r.endpoint == "generate"]
    # google-genai 2.34 spells it thinking_budget inside thinkingConfig; proto3 JSON takes both spellings.
    assert sent and all(proto_field(c["thinkingConfig"], "thinkingBudget") == 512 for c in sent)
    usage = table(settings, "genai_usage")
    assert usage and all(u["thinking_tokens"] == 512 for u in usage)
    assert sum(u["cost_usd"] for u in usage) <= 0.01
    statuses = [r["status"] for r in table(settings, "image_features") + table(settings, "video_features")]
    assert "skipped_budget" in statuses  # the estimate counts the thinking, so not everything fit


def test_estimates_count_the_thinking_budget(gemini: GeminiStub) -> None:
    off = runner_for(gemini_provider(gemini))
    on = runner_for(gemini_provider(gemini), thinking_budget=4096)
    usage, cost = on.estimate(image())
    assert usage.thinking_tokens == 4096 and off.estimate(image())[0].thinking_tokens == 0
    assert cost == pytest.approx(off.estimate(image())[1] + 4096 * 2.50 / 1e6)


def test_a_model_that_cannot_stop_thinking_needs_a_budget(gemini: GeminiStub) -> None:
    with pytest.raises(ValueError, match="at least 128"):
        gemini_provider(gemini, gemini_model="gemini-2.5-pro")
    assert gemini_provider(gemini, gemini_model="gemini-2.5-pro", genai_thinking_budget=128).model


# --- 8: one run budget over all the tasks of a DAG run -------------------------------------------------------------
def _spend(settings: Settings, rows: list[tuple[str, str, str, float]]) -> None:
    now = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    usage = [
        tables.GenAIUsage(
            call_id=f"c{n}",
            creative_id=creative_id,
            modality=modality,
            provider="gemini",
            model="gemini-2.5-flash",
            mode="online",
            prompt_version=schema.PROMPT_VERSION,
            cost_usd=cost,
            status="ok",
            run_id=run_id,
            called_at=now,
        )
        for n, (run_id, creative_id, modality, cost) in enumerate(rows)
    ]
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        ctx.warehouse.ensure_tables(["genai_usage"])
        ctx.warehouse.merge_rows("genai_usage", usage)


def test_task_budget_shares_and_what_others_spent(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path)
    _spend(
        settings,
        [
            ("run1", "img_1", "image", 0.30),  # chunk A (img_1, img_2) spent 0.40 before its task was retried
            ("run1", "img_2", "image", 0.10),
            ("run1", "img_3", "image", 0.25),  # chunk B
            ("run1", "vid_1", "video", 0.20),
            ("run0", "img_4", "image", 9.00),  # another run: not this run's money
        ],
    )
    assert split_budget([3.0, 1.0]) == [0.75, 0.25] and split_budget([0.0, 0.0]) == [0.5, 0.5]
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        chunk_a = task_budget(ctx.warehouse, "run1", 1.0, modality="image", share=0.5, creative_ids=["img_1", "img_2"])
        assert chunk_a.limit == pytest.approx(0.5) and chunk_a.committed == pytest.approx(0.40)
        assert chunk_a.reserve(0.09) and not chunk_a.reserve(0.02)  # 0.10 left of its half
        # A task that starts after the others spent 0.85 of the run's 1.00 gets 0.15, whatever its share.
        late = task_budget(ctx.warehouse, "run1", 1.0, modality="video", share=0.9, creative_ids=["vid_2"])
        assert late.committed == 0 and late.limit == pytest.approx(0.15)
        # Without chunk ids the task is the modality (the unchunked image task): 0.65 of its own spent already.
        images = task_budget(ctx.warehouse, "run1", 1.0, modality="image", share=1.0)
        assert images.committed == pytest.approx(0.65) and images.limit == pytest.approx(0.80)


def test_image_and_video_tasks_share_the_run_budget(gemini: GeminiStub, tmp_path: Path, clip: bytes) -> None:
    budget = 0.01
    settings = build_home(tmp_path, clip, **gemini_settings(gemini, run_budget_usd=budget))
    first = run(settings, features.images)
    second = run(settings, features.videos)
    assert first["statuses"].get("ok", 0) + second["statuses"].get("ok", 0) > 0
    spent = sum(u["cost_usd"] for u in table(settings, "genai_usage"))
    assert spent <= budget
    # The video task (1 item) could not take more than what the run left after the image task.
    assert sum(u["cost_usd"] for u in table(settings, "genai_usage") if u["modality"] == "image") <= budget
    assert len(table(settings, "image_features")) == N_IMAGES


def test_pending_estimate_reads_query_rows() -> None:
    import pandas as pd

    from adpipeline.features.budget import estimate_cost, pending_estimate

    prices = load_prices()
    videos = pd.DataFrame(
        {"width": [640, None], "height": [360, None], "duration_s": [10.0, float("nan")], "has_audio": [True, pd.NA]}
    )
    expected = estimate_cost(
        prices, "gemini-2.5-flash", "video", width=640, height=360, duration_s=10.0, has_audio=True
    )
    unknown = estimate_cost(prices, "gemini-2.5-flash", "video")  # unknown length counts as 30 s
    assert pending_estimate(prices, "gemini-2.5-flash", "video", videos) == pytest.approx(expected[1] + unknown[1])
    assert pending_estimate(prices, "gemini-2.5-flash", "image", videos.iloc[:0]) == 0.0
