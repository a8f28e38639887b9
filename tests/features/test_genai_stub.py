"""The local LLM stubs, driven by the real google-genai and openai SDKs (no network)."""

from __future__ import annotations

import base64
import io
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx
import openai
import pydantic
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from adpipeline.testing import GeminiStub, OpenAIStub
from adpipeline.testing._schema_instance import schema_instance, schema_violation

MODEL = "gemini-2.5-flash"


class CallToAction(pydantic.BaseModel):
    label: str
    url: str | None = None


class Creative(pydantic.BaseModel):
    product_type: str
    tone: Literal["playful", "serious"]
    headline_words: int = pydantic.Field(ge=3)
    has_logo: bool
    colors: list[str]
    price: float | None = None
    cta: CallToAction | None = None


@pytest.fixture
def gemini() -> Iterator[GeminiStub]:
    with GeminiStub() as stub:
        yield stub


@pytest.fixture
def client(gemini: GeminiStub) -> genai.Client:
    options = types.HttpOptions(
        base_url=gemini.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="test", http_options=options)


def _jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, format="JPEG")
    return buffer.getvalue()


def _ask(client: genai.Client, schema: Any = Creative, **config: Any) -> types.GenerateContentResponse:
    config = {"response_mime_type": "application/json", "response_schema": schema} | config
    return client.models.generate_content(model=MODEL, contents="Describe the ad.", config=config)


def _details(usage: types.GenerateContentResponseUsageMetadata) -> dict[str, int]:
    return {detail.modality.value: detail.token_count for detail in usage.prompt_tokens_details or []}


# -- Gemini: generateContent / countTokens -------------------------------------------------------------------------
def test_generate_with_inline_image_parses_into_the_schema(gemini: GeminiStub, client: genai.Client) -> None:
    prompt = "Describe this ad creative."
    image = types.Part.from_bytes(data=_jpeg(1000, 500), mime_type="image/jpeg")
    response = client.models.generate_content(
        model=MODEL,
        contents=[image, prompt],
        config=types.GenerateContentConfig(response_mime_type="application/json", response_schema=Creative),
    )

    assert isinstance(response.parsed, Creative)
    assert response.parsed.tone == "playful" and response.parsed.headline_words == 3
    usage = response.usage_metadata
    assert _details(usage) == {"TEXT": math.ceil(len(prompt) / 4), "IMAGE": 258 * 2}  # two 768x768 tiles
    assert usage.candidates_token_count == math.ceil(len(response.text) / 4)
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert usage.thoughts_token_count == 0 and usage.cached_content_token_count is None
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == MODEL and response.response_id
    (request,) = gemini.requests
    assert request.path == f"/v1beta/models/{MODEL}:generateContent" and request.model == MODEL
    assert "responseSchema" in request.body["generationConfig"]  # what google-genai 2.34 sends for a pydantic model
    assert request.body["generationConfig"]["responseSchema"]["properties"]["tone"]["type"] == "STRING"


def test_generate_with_json_schema_on_v1(gemini: GeminiStub) -> None:
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=gemini.url, api_version="v1"))
    response = _ask(client, schema=None, response_json_schema=Creative.model_json_schema())

    assert Creative.model_validate(response.parsed).product_type == "stub"
    assert gemini.requests[0].path.startswith("/v1/models/")
    assert "responseJsonSchema" in gemini.requests[0].body["generationConfig"]


def test_canned_answers_per_model_beat_global_ones(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.answer({"product_type": "shoe", "tone": "serious", "headline_words": 5, "has_logo": True, "colors": []})
    gemini.answer("plain words", model="models/gemini-other")

    assert _ask(client).parsed.product_type == "shoe"
    other = client.models.generate_content(model="gemini-other", contents="hi")
    assert other.text == "plain words"


def test_plain_text_and_usage_knobs(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.thoughts_tokens, gemini.cached_tokens, gemini.model_version = 40, 2, "gemini-2.5-flash-001"
    response = client.models.generate_content(model=MODEL, contents="Say hello to the team")

    usage = response.usage_metadata
    assert response.text == "stub answer" and response.model_version == "gemini-2.5-flash-001"
    assert usage.thoughts_token_count == 40 and usage.cached_content_token_count == 2
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count + 40


def test_count_tokens_uses_the_same_arithmetic(client: genai.Client) -> None:
    image = types.Part.from_bytes(data=_jpeg(200, 200), mime_type="image/jpeg")
    audio = types.Part.from_bytes(data=b"\x00" * 64, mime_type="audio/wav")

    counted = client.models.count_tokens(model=MODEL, contents=[image, audio, "12345678"])

    assert counted.total_tokens == 2 + 258 + 32 * 5


# -- Gemini: Files API ---------------------------------------------------------------------------------------------
def test_upload_poll_generate_delete(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.file_active_after_gets = 2
    video = io.BytesIO(b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 1000)

    uploaded = client.files.upload(file=video, config={"mime_type": "video/mp4", "display_name": "clip"})
    assert uploaded.state == types.FileState.PROCESSING and uploaded.name.startswith("files/")
    assert uploaded.size_bytes == 1012 and uploaded.display_name == "clip" and uploaded.uri.startswith(gemini.url)
    part = types.Part.from_uri(file_uri=uploaded.uri, mime_type="video/mp4")
    assert client.files.get(name=uploaded.name).state == types.FileState.PROCESSING
    with pytest.raises(errors.ClientError) as not_ready:
        client.models.generate_content(model=MODEL, contents=[part, "what happens?"])
    assert not_ready.value.code == 400

    active = client.files.get(name=uploaded.name)
    assert active.state == types.FileState.ACTIVE and active.video_metadata == {"videoDuration": "5s"}
    response = client.models.generate_content(model=MODEL, contents=[part, "what happens?"])
    assert _details(response.usage_metadata)["VIDEO"] == 263 * 5

    client.files.delete(name=uploaded.name)
    assert gemini.deleted_files == [uploaded.name] and gemini.uploaded_files[0]["name"] == uploaded.name
    with pytest.raises(errors.ClientError) as gone:
        client.files.get(name=uploaded.name)
    assert gone.value.code == 403
    assert gemini.count("upload") == 1 and gemini.count("upload_chunk") == 1


def test_a_file_can_stay_processing_forever(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.file_active_after_gets = None
    uploaded = client.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "video/mp4"})

    states = {client.files.get(name=uploaded.name).state for _ in range(3)}

    assert states == {types.FileState.PROCESSING}


# -- Gemini: Batch API ---------------------------------------------------------------------------------------------
def _inlined(n: int) -> list[dict[str, Any]]:
    config = {"response_mime_type": "application/json", "response_schema": Creative}
    return [{"contents": f"creative {i}", "config": config, "metadata": {"key": f"ad-{i}"}} for i in range(n)]


def test_batch_of_inlined_requests_succeeds_after_polling(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.batch_running_polls = 2
    job = client.batches.create(model=MODEL, src=_inlined(3), config={"display_name": "nightly"})
    assert job.name.startswith("batches/") and job.state == types.JobState.JOB_STATE_PENDING

    states = [client.batches.get(name=job.name).state for _ in range(3)]

    assert states[:2] == [types.JobState.JOB_STATE_RUNNING] * 2 and states[2] == types.JobState.JOB_STATE_SUCCEEDED
    done = client.batches.get(name=job.name)
    assert done.display_name == "nightly" and done.model == f"models/{MODEL}"
    responses = done.dest.inlined_responses
    assert [item.metadata for item in responses] == [{"key": f"ad-{i}"} for i in range(3)]
    assert all(Creative.model_validate_json(item.response.text) for item in responses)
    assert all(item.response.usage_metadata.prompt_token_count == 3 for item in responses)
    body = gemini.requests[0].body
    assert len(body["batch"]["inputConfig"]["requests"]["requests"]) == 3
    assert "responseSchema" in body["batch"]["inputConfig"]["requests"]["requests"][0]["request"]["generationConfig"]


def test_batch_with_per_request_errors_and_failures(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.fail("500", endpoint="batch_item")
    gemini.fail("malformed", endpoint="batch_item")
    job = client.batches.create(model=MODEL, src=_inlined(3))
    client.batches.get(name=job.name)

    items = client.batches.get(name=job.name).dest.inlined_responses

    assert items[0].error.code == 500 and items[0].response is None
    assert items[1].response.text.startswith("```json")
    assert Creative.model_validate_json(items[2].response.text)

    gemini.batch_final_state, gemini.batch_running_polls = "BATCH_STATE_FAILED", 0
    failed = client.batches.create(model=MODEL, src=_inlined(1))
    assert client.batches.get(name=failed.name).state == types.JobState.JOB_STATE_FAILED


def test_batch_cancel_and_delete(client: genai.Client) -> None:
    job = client.batches.create(model=MODEL, src=_inlined(1))

    client.batches.cancel(name=job.name)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=job.name)
    assert gone.value.code == 404


# -- Gemini: faults ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "error"), [("429", errors.ClientError), ("500", errors.ServerError)])
def test_http_faults_raise_sdk_errors(gemini: GeminiStub, client: genai.Client, kind: str, error: type) -> None:
    gemini.fail(kind, retry_after=2)

    with pytest.raises(error) as raised:
        _ask(client)

    # Like the real service: the delay is in the body's google.rpc.RetryInfo, never in a Retry-After header.
    assert raised.value.code == int(kind) and "retry-after" not in raised.value.response.headers
    [info] = raised.value.details["error"]["details"]
    assert info == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}
    assert _ask(client).parsed is not None  # the fault was consumed


def test_reset_and_garbage_faults(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.fail("reset", endpoint="generate")
    gemini.fail("garbage", endpoint="generate")
    with pytest.raises(httpx.RemoteProtocolError):
        _ask(client)
    with pytest.raises(json.JSONDecodeError):  # HTTP 200, an HTML page where JSON belongs
        _ask(client)
    assert _ask(client).parsed is not None and gemini.count("generate") == 3


def test_billed_sums_the_usage_sent_and_the_thinking_budget_caps_thoughts(
    gemini: GeminiStub, client: genai.Client
) -> None:
    gemini.thoughts_tokens = 5000
    first = _ask(client)
    capped = client.models.generate_content(
        model="gemini-2.5-flash",
        contents=["Describe it."],
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=128)),
    )
    assert first.usage_metadata.thoughts_token_count == 5000
    assert capped.usage_metadata.thoughts_token_count == 128
    billed = gemini.billed
    assert billed["thoughtsTokenCount"] == 5128
    prompt = first.usage_metadata.prompt_token_count + capped.usage_metadata.prompt_token_count
    assert billed["promptTokenCount"] == prompt


def test_faults_are_fifo_and_filtered_by_endpoint(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.fail("503", endpoint="count")
    gemini.fail("429", times=2, endpoint="generate")

    for _ in range(2):
        with pytest.raises(errors.ClientError):
            _ask(client)
    assert _ask(client).parsed is not None
    with pytest.raises(errors.ServerError) as unavailable:
        client.models.count_tokens(model=MODEL, contents="x")
    assert unavailable.value.status == "UNAVAILABLE" and gemini.pending_faults == []


def test_upload_faults_hit_the_upload_start(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.fail("503", endpoint="upload")

    with pytest.raises(errors.ServerError):
        client.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "image/png"})


def test_content_faults_give_unparsed_responses(gemini: GeminiStub, client: genai.Client) -> None:
    for kind in ("malformed", "wrong_schema", "blocked", "blocked_candidate", "empty"):
        gemini.fail(kind)

    malformed, wrong, blocked, blocked_candidate, empty = (_ask(client) for _ in range(5))

    assert malformed.parsed is None and malformed.text == "```json {oops"
    assert wrong.parsed is None and "unexpected_key" in json.loads(wrong.text)
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY and not blocked.candidates
    assert blocked_candidate.candidates[0].finish_reason == types.FinishReason.SAFETY
    assert blocked_candidate.text is None and blocked_candidate.parsed is None
    assert empty.candidates is None and empty.usage_metadata.prompt_token_count > 0


def test_slow_fault_and_latency(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.fail("slow", delay_s=0.3)
    gemini.latency_s = 0.1

    started = time.monotonic()
    _ask(client)
    _ask(client)

    assert time.monotonic() - started >= 0.5


def test_sdk_retries_only_when_retry_options_are_given(gemini: GeminiStub) -> None:
    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.01, max_delay=0.01, jitter=0)
    retrying = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=gemini.url, retry_options=retry))
    gemini.fail("429", times=2)
    assert _ask(retrying).parsed is not None and gemini.count("generate") == 3

    gemini.fail("500")
    with pytest.raises(errors.ServerError):
        _ask(gemini.client())  # no retry_options: a single attempt
    assert gemini.count("generate") == 4


def test_concurrent_requests_are_all_recorded(gemini: GeminiStub, client: genai.Client) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _ask(client).parsed, range(24)))

    assert all(isinstance(result, Creative) for result in results) and gemini.count("generate") == 24
    assert all(request.received_at > 0 for request in gemini.requests)


# -- schema instances ----------------------------------------------------------------------------------------------
def test_schema_instances_cover_both_dialects() -> None:
    gemini_schema = {
        "type": "OBJECT",
        "properties": {
            "tone": {"type": "STRING", "enum": ["warm", "cold"]},
            "n": {"type": "INTEGER", "minimum": "2"},
            "maybe": {"type": "NUMBER", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "1"},
        },
    }
    assert schema_instance(gemini_schema) == {"tone": "warm", "n": 2, "maybe": 1.0, "tags": ["stub"]}
    json_schema = Creative.model_json_schema()
    assert Creative.model_validate(schema_instance(json_schema)).cta == CallToAction(label="stub", url="stub")
    with pytest.raises(pydantic.ValidationError):
        Creative.model_validate(schema_violation(json_schema))
    assert schema_instance({"type": ["null", "string"], "format": "date-time"}) == "2024-01-01T00:00:00Z"


# -- OpenAI-compatible chat completions ----------------------------------------------------------------------------
@pytest.fixture
def oai() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub


@pytest.fixture
def oai_client(oai: OpenAIStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=oai.url + "/v1", api_key="test", max_retries=0)


def _image_message(text: str, image: bytes) -> dict[str, Any]:
    url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    parts = [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}]
    return {"role": "user", "content": parts}


def test_openai_json_schema_structured_output_with_image(oai: OpenAIStub, oai_client: openai.OpenAI) -> None:
    oai.cached_tokens, oai.reasoning_tokens = 10, 7
    completion = oai_client.chat.completions.parse(
        model="gpt-4o", messages=[_image_message("Describe it", _jpeg(1024, 1024))], response_format=Creative
    )

    message = completion.choices[0].message
    assert isinstance(message.parsed, Creative) and completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens == 3 + 765 and usage.prompt_tokens_details.cached_tokens == 10
    assert usage.completion_tokens == math.ceil(len(message.content) / 4) + 7
    assert usage.completion_tokens_details.reasoning_tokens == 7 and completion.model == "gpt-4o"
    assert oai.requests[0].body["response_format"]["type"] == "json_schema"


def test_openai_tool_calling_structured_output(oai_client: openai.OpenAI) -> None:
    tool = openai.pydantic_function_tool(Creative)
    completion = oai_client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Describe it"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "Creative"}},
    )

    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "Creative" and Creative.model_validate_json(call.function.arguments)


def test_azure_deployment_route(oai: OpenAIStub) -> None:
    azure = openai.AzureOpenAI(azure_endpoint=oai.url, api_version="2024-10-21", api_key="test", max_retries=0)
    oai.answer("hello from azure", model="my-deployment")

    completion = azure.chat.completions.create(model="my-deployment", messages=[{"role": "user", "content": "hi"}])

    assert completion.choices[0].message.content == "hello from azure"
    assert oai.requests[0].path == "/openai/deployments/my-deployment/chat/completions"


def test_openai_faults(oai: OpenAIStub, oai_client: openai.OpenAI) -> None:
    json_schema = {"name": "Creative", "schema": Creative.model_json_schema()}

    def ask() -> Any:
        return oai_client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": json_schema},
        )

    oai.fail("429", retry_after=3)
    oai.fail("500")
    for kind in ("malformed", "wrong_schema", "blocked"):
        oai.fail(kind)
    oai.fail("slow", delay_s=0.2)

    with pytest.raises(openai.RateLimitError) as limited:
        ask()
    assert limited.value.response.headers["retry-after"] == "3"
    assert limited.value.response.headers["retry-after-ms"] == "3000"
    with pytest.raises(openai.InternalServerError):
        ask()
    assert ask().choices[0].message.content == "```json {oops"
    with pytest.raises(pydantic.ValidationError):
        Creative.model_validate_json(ask().choices[0].message.content)
    assert ask().choices[0].finish_reason == "content_filter"
    started = time.monotonic()
    assert Creative.model_validate_json(ask().choices[0].message.content)
    assert time.monotonic() - started >= 0.2 and oai.count("chat") == 6


def test_unknown_fault_kinds_are_rejected(oai: OpenAIStub) -> None:
    with pytest.raises(ValueError):
        oai.fail("empty")
    with pytest.raises(ValueError):
        GeminiStub().fail("malformed", endpoint="files")
    with pytest.raises(ValueError):
        GeminiStub().fail("500", endpoint="generation")


# -- standalone entry point ----------------------------------------------------------------------------------------
def test_module_entry_point_serves_until_killed() -> None:
    command = [sys.executable, "-m", "adpipeline.testing.genai_stub", "--port", "0", "--openai"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            url = process.stdout.readline().split()[-1]
            reply = httpx.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": []}, timeout=10)
        finally:
            process.terminate()
    assert reply.json()["choices"][0]["message"]["content"] == "stub answer"


def test_chaos_faults_are_seeded_and_bills_name_their_media(gemini: GeminiStub, client: genai.Client) -> None:
    gemini.chaos(0.5, ["malformed", "500"], seed=7)
    outcomes = []
    for _ in range(20):
        try:
            outcomes.append("ok" if _ask(client).parsed is not None else "unparsed")
        except errors.ServerError:
            outcomes.append("500")
    assert "500" in outcomes and "unparsed" in outcomes and "ok" in outcomes
    bills = gemini.bills
    assert len(bills) == outcomes.count("ok") + outcomes.count("unparsed")  # a 500 bills nothing
    assert sum(not b.clean for b in bills) == outcomes.count("unparsed")
    assert {b.media_key for b in bills} == {""}  # text-only prompts
    again = GeminiStub().start()
    try:
        again.chaos(0.5, ["malformed", "500"], seed=7)
        replay = []
        for _ in range(20):
            try:
                replay.append("ok" if _ask(again.client()).parsed is not None else "unparsed")
            except errors.ServerError:
                replay.append("500")
    finally:
        again.stop()
    assert replay == outcomes  # same seed, same faults
    with pytest.raises(ValueError):
        gemini.chaos(0.1, ["no-such-fault"])


def test_bills_key_the_media_and_a_client_that_gave_up_is_not_billed(gemini: GeminiStub) -> None:
    client = genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=gemini.url, api_version="v1beta", timeout=500)
    )
    image = types.Part.from_bytes(data=_png_bytes(), mime_type="image/png")
    gemini.fail("slow", delay_s=1.5, endpoint="generate")
    with pytest.raises(httpx.TimeoutException):
        client.models.generate_content(model=MODEL, contents=[image, "Describe the ad."])
    time.sleep(1.3)  # the stub wakes up, sees the client gone, generates nothing
    client.models.generate_content(model=MODEL, contents=[image, "Describe the ad."])
    [bill] = gemini.bills
    assert bill.clean and len(bill.media_key) == 16 and bill.usage["promptTokenCount"] > 258


def _png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(out, "PNG")
    return out.getvalue()
