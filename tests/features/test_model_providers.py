"""The features stage with real SDKs against the local stubs: Gemini (google-genai) and LangChain (OpenAI / Azure).

Each test builds a small warehouse (images analysed and grouped as the media stage does, one video probed), runs the
features stage the way the DAG does, and checks the feature rows, the ledger and what the stub was sent.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from adpipeline import tables
from adpipeline.bucket import Bucket
from adpipeline.features.pricing import PriceTableError, load_prices
from adpipeline.media.images import analyse_image
from adpipeline.media.videos import probe_video
from adpipeline.settings import Settings
from adpipeline.stages import features
from adpipeline.stages.context import StageContext, StageFailed
from adpipeline.testing.gemini_stub import GeminiStub
from adpipeline.testing.openai_stub import OpenAIStub
from adpipeline.window import Window
from tests.features.test_features_offline import make_video

DAY = dt.date(2026, 10, 1)
N_IMAGES = 6


def _png(n: int) -> bytes:
    image = Image.new("RGB", (400 + 40 * n, 300), (30 * n % 255, 90, 200))
    ImageDraw.Draw(image).text((20, 20), f"SALE {10 * n}% OFF", fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_video(tmp_path_factory.mktemp("v") / "v.mp4", [((200, 30, 30), "BUY NOW", 1.0)], fps=5)
    return path.read_bytes()


def build_home(home: Path, video_bytes: bytes, **overrides: Any) -> Settings:
    """A warehouse as the media stage leaves it: N_IMAGES distinct images (each its own group) and one video."""
    settings = Settings(_env_file=None, home=home, **overrides)
    bucket = Bucket(settings.resolved_bucket_url)
    creatives, fetches, hashes, groups = [], [], [], []
    for n in range(N_IMAGES):
        cid = f"img_{n}"
        data = _png(n)
        sha, key = bucket.put_blob(data)
        creatives.append(
            tables.Creative(
                creative_id=cid,
                url=f"https://ads.example/{n}.png",
                media_type="image",
                first_seen_date=DAY,
                last_seen_date=DAY,
            )
        )
        fetches.append(
            tables.MediaFetch(
                creative_id=cid,
                url=creatives[-1].url,
                media_type="image",
                status="ok",
                sha256=sha,
                size_bytes=len(data),
                blob_path=key,
                attempts=1,
            )
        )
        hashes.append(analyse_image(data, settings).to_row(cid, sha))
        groups.append(
            tables.DuplicateGroup(
                creative_id=cid,
                group_id=f"g_{cid}",
                canonical_creative_id=cid,
                hamming_to_canonical=0,
                is_canonical=True,
                group_size=1,
            )
        )
    sha, key = bucket.put_blob(video_bytes)
    creatives.append(
        tables.Creative(
            creative_id="vid_0",
            url="https://ads.example/v.mp4",
            media_type="video",
            first_seen_date=DAY,
            last_seen_date=DAY,
        )
    )
    fetches.append(
        tables.MediaFetch(
            creative_id="vid_0",
            url=creatives[-1].url,
            media_type="video",
            status="ok",
            sha256=sha,
            size_bytes=len(video_bytes),
            blob_path=key,
            attempts=1,
        )
    )
    video = probe_video(video_bytes, settings).to_row("vid_0", sha)
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        ctx.warehouse.ensure_tables(features.FEATURE_TABLES)
        for table, rows in (
            ("creatives", creatives),
            ("media_fetches", fetches),
            ("image_hashes", hashes),
            ("duplicate_groups", groups),
            ("video_metadata", [video]),
        ):
            ctx.warehouse.merge_rows(table, rows)
    return settings


def gemini_settings(stub: GeminiStub, **overrides: Any) -> dict[str, Any]:
    return {
        "feature_provider": "gemini",
        "gemini_base_url": stub.url,
        "gemini_api_version": "v1beta",
        "genai_backoff_s": 0.01,
        "genai_rpm": 1e6,
        "genai_concurrency": 3,
        "genai_mode": "online",
        **overrides,
    }


def run(settings: Settings, stage: Any, run_id: str = "run1") -> dict[str, Any]:
    with StageContext(settings, Window(DAY, DAY), run_id=run_id) as ctx:
        return stage(ctx)


def table(settings: Settings, name: str) -> list[dict[str, Any]]:
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        return ctx.warehouse.read_table(name, order_by="1").to_dict("records")


@pytest.fixture()
def gemini() -> Any:
    with GeminiStub() as stub:
        yield stub


def test_gemini_fills_features_and_the_ledger(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini))
    result = run(settings, features.images)
    assert result["statuses"] == {"ok": N_IMAGES}
    run(settings, features.videos)
    rows = table(settings, "image_features") + table(settings, "video_features")
    assert {r["status"] for r in rows} == {"ok"} and {r["provider"] for r in rows} == {"gemini"}
    usage = table(settings, "genai_usage")
    assert len(usage) == N_IMAGES + 1
    images = [u for u in usage if u["modality"] == "image"]
    assert all(u["input_image_tokens"] > 0 and u["input_text_tokens"] > 0 and u["output_tokens"] > 0 for u in images)
    [video] = [u for u in usage if u["modality"] == "video"]
    assert video["input_video_tokens"] > 0 and video["cost_usd"] > 0 and video["model"]
    assert all(u["mode"] == "online" and u["price_version"] == load_prices().version for u in usage)
    sent = [r for r in gemini.requests if r.endpoint == "generate"]
    config = sent[0].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "responseSchema" in config or "responseJsonSchema" in config
    # Re-running finds nothing to do and calls nothing.
    assert run(settings, features.images, "run2")["extracted"] == 0
    assert gemini.count("generate") == len(sent)


def test_429_storm_and_5xx_are_retried(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_concurrency=1, genai_max_retries=5))
    gemini.fail("429", times=3, retry_after=0, endpoint="generate")
    gemini.fail("503", times=2, endpoint="generate")
    assert run(settings, features.images)["statuses"] == {"ok": N_IMAGES}
    assert max(u["attempts"] for u in table(settings, "genai_usage")) >= 3


def test_failures_are_rows_and_a_rerun_finishes(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_max_retries=1, genai_concurrency=1))
    gemini.fail("500", times=2 * N_IMAGES, endpoint="generate")
    with pytest.raises(StageFailed):
        run(settings, features.images)
    rows = table(settings, "image_features")
    assert len(rows) == N_IMAGES and {r["status"] for r in rows} == {"failed"}
    assert all("HTTP 500" in r["reason"] for r in rows)
    result = run(settings, features.images, "run2")
    assert result["statuses"] == {"ok": N_IMAGES}
    assert len(table(settings, "image_features")) == N_IMAGES  # MERGE: no row twice
    assert len({u["call_id"] for u in table(settings, "genai_usage")}) == len(table(settings, "genai_usage"))


def test_malformed_then_repaired_and_wrong_schema_kept_raw(
    gemini: GeminiStub, video_bytes: bytes, tmp_path: Path
) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_concurrency=1))
    gemini.fail("malformed", times=1, endpoint="generate")  # first image: repaired
    gemini.fail("wrong_schema", times=2, endpoint="generate")  # second image: invalid twice
    result = run(settings, features.images)
    assert result["statuses"] == {"ok": N_IMAGES - 1, "invalid_response": 1}
    [bad] = [r for r in table(settings, "image_features") if r["status"] == "invalid_response"]
    assert bad["raw_response"] and "after one repair" in bad["reason"]
    prompts = [r.body["contents"][0]["parts"][-1]["text"] for r in gemini.requests if r.endpoint == "generate"]
    assert sum("could not be used" in p for p in prompts) == 2


def test_safety_block_is_a_status_and_not_asked_again(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_concurrency=1))
    gemini.fail("blocked", endpoint="generate")
    gemini.fail("blocked_candidate", endpoint="generate")
    assert run(settings, features.images)["statuses"] == {"ok": N_IMAGES - 2, "blocked": 2}
    calls = gemini.count("generate")
    assert run(settings, features.images, "run2")["extracted"] == 0
    assert gemini.count("generate") == calls


def test_timeouts_are_retried_then_recorded(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(
        tmp_path, video_bytes, **gemini_settings(gemini, genai_timeout_s=1, genai_max_retries=1, genai_concurrency=1)
    )
    gemini.fail("slow", times=2, delay_s=2.5, endpoint="generate")
    result = run(settings, features.images)
    assert result["statuses"] == {"ok": N_IMAGES - 1, "failed": 1}
    [slow] = [r for r in table(settings, "image_features") if r["status"] == "failed"]
    assert "timeout" in slow["reason"].lower()


def test_big_video_goes_through_the_files_api(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(
        tmp_path, video_bytes, **gemini_settings(gemini, gemini_inline_max_bytes=1, gemini_file_poll_s=0.01)
    )
    assert run(settings, features.videos)["statuses"] == {"ok": 1}
    [uploaded] = gemini.uploaded_files
    assert gemini.deleted_files == [uploaded["name"]]
    [call] = [r for r in gemini.requests if r.endpoint == "generate"]
    assert uploaded["uri"] in str(call.body["contents"][0]["parts"][0]), call.body["contents"][0]["parts"][0]


def test_video_still_processing_past_the_wait(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    gemini.file_active_after_gets = None  # never ACTIVE
    settings = build_home(
        tmp_path,
        video_bytes,
        **gemini_settings(gemini, gemini_inline_max_bytes=1, gemini_file_wait_s=0.3, gemini_file_poll_s=0.05),
    )
    with pytest.raises(StageFailed):  # 1 of 1 failed: the task fails, the status row is kept
        run(settings, features.videos)
    [row] = table(settings, "video_features")
    assert "PROCESSING" in row["reason"]
    assert gemini.count("generate") == 0 and len(gemini.deleted_files) == 1


def test_price_table_without_the_model_fails_before_any_call(
    gemini: GeminiStub, video_bytes: bytes, tmp_path: Path
) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, gemini_model="gemini-9-ultra"))
    with pytest.raises(PriceTableError, match="gemini-9-ultra"):
        run(settings, features.images)
    assert gemini.requests == []


def test_budget_exhausted_mid_run_then_finished_later(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    # One image is estimated at ~0.002 USD (prompt ~1.6k tokens + 258 image tokens + 700 output tokens).
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, run_budget_usd=0.003, genai_concurrency=1))
    first = run(settings, features.images)
    assert first["statuses"]["skipped_budget"] > 0 and first["statuses"].get("ok", 0) > 0
    spent = sum(u["cost_usd"] for u in table(settings, "genai_usage"))
    assert spent <= 0.003
    # A retry of the same run does not get a fresh budget...
    again = run(settings, features.images)
    assert again["statuses"].get("ok", 0) == 0
    # ...a later run does, and finishes the rest without writing any row twice.
    later = Settings(**{**settings.model_dump(), "run_budget_usd": 1.0})
    run(later, features.images, "run2")
    rows = table(settings, "image_features")
    assert len(rows) == N_IMAGES and {r["status"] for r in rows} == {"ok"}


def test_cache_never_pays_twice(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini))
    run(settings, features.images)
    calls = gemini.count("generate")
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        ctx.warehouse.query("DELETE FROM {{ image_features }} WHERE TRUE")
    result = run(settings, features.images, "run2")
    assert result["statuses"] == {"ok": N_IMAGES} and result["cached"] == N_IMAGES
    assert gemini.count("generate") == calls


def test_batch_mode_submits_collects_at_half_price(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    gemini.batch_running_polls = 2
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_mode="batch"))
    result = run(settings, features.images)
    assert result["batched"] == N_IMAGES and result["statuses"] == {"submitted": N_IMAGES}
    assert gemini.count("generate") == 0
    # Submitted items are not sent again by another run.
    assert run(settings, features.images, "run2")["extracted"] == 0
    waits = 0
    while not run(settings, features.collect_batches, "run1"):
        waits += 1
        assert waits < 10
    assert waits >= 1
    rows = table(settings, "image_features")
    assert {r["status"] for r in rows} == {"ok"}
    usage = table(settings, "genai_usage")
    assert len(usage) == N_IMAGES and {u["mode"] for u in usage} == {"batch"}
    prices = load_prices()
    for u in usage:
        online = prices.cost(u["model"], _usage(u), "online")
        assert u["cost_usd"] == pytest.approx(online / 2)
    [batch] = table(settings, "genai_batches")
    assert batch["state"] == "collected" and batch["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in usage))
    # Collecting again changes nothing.
    assert run(settings, features.collect_batches, "run3") is True
    assert len(table(settings, "genai_usage")) == N_IMAGES


def test_failed_batch_items_are_picked_up_again(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    gemini.batch_final_state = "BATCH_STATE_FAILED"
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_mode="batch"))
    run(settings, features.images)
    while not run(settings, features.collect_batches):
        pass
    assert {r["status"] for r in table(settings, "image_features")} == {"failed"}
    online = Settings(**{**settings.model_dump(), "genai_mode": "online"})
    assert run(online, features.images, "run2")["statuses"] == {"ok": N_IMAGES}


def _usage(row: dict[str, Any]) -> Any:
    from adpipeline.features.pricing import TokenUsage

    return TokenUsage(**{k: int(row[k]) for k in TokenUsage().as_columns()})


# --- LangChain ----------------------------------------------------------------------------------------------------
@pytest.fixture()
def openai_stub() -> Any:
    with OpenAIStub() as stub:
        yield stub


@pytest.mark.parametrize("flavour", ["openai", "azure_openai"])
def test_langchain_openai_and_azure(openai_stub: OpenAIStub, video_bytes: bytes, tmp_path: Path, flavour: str) -> None:
    base = openai_stub.url + "/v1" if flavour == "openai" else openai_stub.url
    settings = build_home(
        tmp_path,
        video_bytes,
        feature_provider="langchain",
        langchain_model=f"{flavour}:gpt-4o-mini",
        langchain_base_url=base,
        langchain_api_key="test-key",
        genai_backoff_s=0.01,
        genai_rpm=1e6,
        langchain_video_frames=2,
    )
    openai_stub.fail("429", retry_after=0)
    assert run(settings, features.images)["statuses"] == {"ok": N_IMAGES}
    assert run(settings, features.videos)["statuses"] == {"ok": 1}
    usage = table(settings, "genai_usage")
    assert len(usage) == N_IMAGES + 1
    assert all(u["provider"] == "langchain" and u["model"] and u["input_text_tokens"] > 0 for u in usage)
    assert all(u["cost_usd"] > 0 for u in usage)
    assert max(u["attempts"] for u in usage) == 2
    if flavour == "azure_openai":
        assert all("/openai/deployments/gpt-4o-mini/" in r.path for r in openai_stub.requests)


def test_the_api_key_never_reaches_logs_or_rows(
    gemini: GeminiStub, video_bytes: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "AIza-test-secret-never-logged"
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, gemini_api_key=secret, genai_max_retries=0))
    gemini.fail("500", times=2, endpoint="generate")
    gemini.fail("wrong_schema", times=2, endpoint="generate")
    caplog.set_level("DEBUG")
    run(settings, features.images)
    assert secret not in caplog.text
    for name in ("image_features", "genai_usage"):
        assert secret not in str(table(settings, name))
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


def langchain_settings(stub: OpenAIStub, flavour: str = "azure_openai", **overrides: Any) -> dict[str, Any]:
    return {
        "feature_provider": "langchain",
        "langchain_model": f"{flavour}:gpt-4o-mini",
        "langchain_base_url": stub.url + "/v1" if flavour == "openai" else stub.url,
        "langchain_api_key": "test-key",
        "genai_backoff_s": 0.01,
        "genai_rpm": 1e6,
        "langchain_video_frames": 2,
        **overrides,
    }


def ledger_matches_the_bill(usage: list[dict[str, Any]], billed: dict[str, int]) -> None:
    """Every token the OpenAI stub billed is in the ledger: prompt = input, completion = output + reasoning."""
    assert sum(u["input_text_tokens"] + u["input_audio_tokens"] for u in usage) == billed["prompt_tokens"]
    assert sum(u["output_tokens"] + u["thinking_tokens"] for u in usage) == billed["completion_tokens"]
    assert sum(u["cached_tokens"] for u in usage) == billed["prompt_tokens_details.cached_tokens"]


@pytest.mark.parametrize("flavour", ["openai", "azure_openai"])
def test_langchain_keeps_every_paid_answer(
    openai_stub: OpenAIStub, video_bytes: bytes, tmp_path: Path, flavour: str
) -> None:
    settings = build_home(tmp_path, video_bytes, **langchain_settings(openai_stub, flavour, genai_concurrency=1))
    openai_stub.reasoning_tokens = 40  # a reasoning model: billed as output, recorded as thinking
    openai_stub.fail("malformed")  # img_0: repaired ...
    openai_stub.fail("slow", delay_s=0)  # ... (a fault that changes nothing: the repair is answered well)
    openai_stub.fail("wrong_schema", times=2)  # img_1: invalid after the repair, raw text kept
    openai_stub.fail("blocked")  # img_2: the output filter stopped the answer (billed)
    openai_stub.fail("prompt_filtered")  # img_3: Azure's HTTP 400 content_filter (not billed)
    openai_stub.fail("reset")  # img_4: retried ...
    openai_stub.fail("garbage")  # ... HTTP 200 with an HTML page: retried too
    result = run(settings, features.images)
    assert result["statuses"] == {"ok": 3, "invalid_response": 1, "blocked": 2}, result
    rows = {r["creative_id"]: r for r in table(settings, "image_features")}
    assert rows["img_1"]["status"] == "invalid_response" and rows["img_1"]["raw_response"].startswith("{")
    assert "content_filter" in rows["img_2"]["reason"] and "content_filter" in rows["img_3"]["reason"]
    usage = table(settings, "genai_usage")
    by_item: dict[str, list[dict[str, Any]]] = {}
    for u in usage:
        by_item.setdefault(u["creative_id"], []).append(u)
    assert sorted(u["status"] for u in by_item["img_1"]) == ["invalid_response", "ok"]
    assert all(u["output_tokens"] > 0 and u["cost_usd"] > 0 for u in by_item["img_1"])  # both answers paid
    assert len(by_item["img_0"]) == 2  # the malformed answer and its repair
    [filtered] = by_item["img_2"]
    assert filtered["status"] == "blocked" and filtered["input_text_tokens"] > 0 and filtered["cost_usd"] > 0
    [img4] = by_item["img_4"]
    assert img4["status"] == "ok" and img4["attempts"] == 3
    assert all(u["thinking_tokens"] == 40 for u in usage if u["output_tokens"] > 0)
    ledger_matches_the_bill(usage, openai_stub.billed)
    # Blocked items are a verdict: a later run neither calls nor pays for them again.
    calls = openai_stub.count("chat")
    rerun = run(settings, features.images, "run2")
    assert openai_stub.count("chat") == calls + rerun["extracted"] and rerun["extracted"] == 1  # only img_1
