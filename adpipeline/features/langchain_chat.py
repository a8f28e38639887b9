"""Any LangChain chat model with structured output (Azure OpenAI, OpenAI, Gemini through langchain-google-genai...).

``ADP_LANGCHAIN_MODEL`` is ``provider:model``: ``azure_openai:<deployment>``, ``openai:<model>``,
``google_genai:<model>``, or anything ``langchain.chat_models.init_chat_model`` knows when the ``langchain`` package
is installed. Code can also pass a ready chat model. Chat APIs take images, not video, so a video is sent as
``langchain_video_frames`` evenly spaced JPEG frames with their times.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import threading
from collections.abc import Generator
from fractions import Fraction
from typing import Any

from pydantic import BaseModel

from adpipeline.features.llm import Answer, MediaItem, Permanent, UnreadableResponse, classify
from adpipeline.features.pricing import TokenUsage
from adpipeline.settings import Settings

_BLOCKING_FINISH = {"content_filter", "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"}
_CLASSES = {
    "openai": ("langchain_openai", "ChatOpenAI", "langchain-openai"),
    "azure_openai": ("langchain_openai", "AzureChatOpenAI", "langchain-openai"),
    "google_genai": ("langchain_google_genai", "ChatGoogleGenerativeAI", "langchain-google-genai"),
}


def split_spec(spec: str) -> tuple[str, str]:
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise ValueError(f"ADP_LANGCHAIN_MODEL must be provider:model (e.g. azure_openai:gpt-4o), got {spec!r}")
    return provider, model


def make_chat_model(settings: Settings) -> Any:
    """The configured chat model, with its own retries off (the runner retries) and the request timeout set."""
    provider, model = split_spec(settings.langchain_model or "")
    key = settings.langchain_api_key.get_secret_value() if settings.langchain_api_key is not None else None
    common: dict[str, Any] = {"max_retries": 0, "timeout": settings.genai_timeout_s, "temperature": 0}
    if provider not in _CLASSES:
        try:
            from langchain.chat_models import init_chat_model
        except ImportError as exc:
            raise ValueError(
                f"LangChain provider {provider!r} needs the langchain package (pip install langchain); "
                f"built in: {', '.join(_CLASSES)}"
            ) from exc
        return init_chat_model(model, model_provider=provider, **common, **({"api_key": key} if key else {}))
    module_name, class_name, package = _CLASSES[provider]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ValueError(f"{provider} models need {package}: pip install 'adpipeline[langchain]'") from exc
    if provider in ("azure_openai", "openai"):
        # Chat completions, never the Responses API (see LangChainProvider._runnable), and a client that turns an
        # HTTP 200 with a body that is not JSON (a proxy's error page) into an error the runner retries.
        common |= {"use_responses_api": False, "http_client": _checked_http_client(settings.genai_timeout_s)}
    kwargs: dict[str, Any]
    if provider == "azure_openai":
        kwargs = {"azure_deployment": model, "api_version": settings.azure_openai_api_version}
        if settings.langchain_base_url:
            kwargs["azure_endpoint"] = settings.langchain_base_url
    elif provider == "openai":
        kwargs = {"model": model, **({"base_url": settings.langchain_base_url} if settings.langchain_base_url else {})}
    else:
        kwargs = {"model": model}
        if provider == "google_genai":
            kwargs["thinking_budget"] = settings.genai_thinking_budget
    if key:
        kwargs["google_api_key" if provider == "google_genai" else "api_key"] = key
    return cls(**kwargs, **common)


_LAST_BODY = threading.local()
"""The JSON body of the last HTTP 200 this thread received through :func:`_checked_http_client`: LangChain's Azure
class raises on a content-filtered answer before it returns the message, so its usage is read from here."""


def _checked_http_client(timeout_s: float) -> Any:
    """An httpx client that turns an HTTP 200 with a body that is not JSON (a proxy's error page) into an error the
    runner retries, and keeps each JSON answer's body for this thread (see ``_LAST_BODY``)."""
    import httpx

    def check(response: httpx.Response) -> None:
        kind = response.headers.get("content-type", "")
        if response.status_code != 200 or "event-stream" in kind:
            return
        if "json" not in kind:
            raise UnreadableResponse(f"HTTP 200 with a {kind or 'untyped'} body instead of JSON")
        response.read()
        with contextlib.suppress(ValueError):
            _LAST_BODY.value = response.json()

    return httpx.Client(timeout=timeout_s, event_hooks={"response": [check]})


def answer_from_body(body: Any, model: str) -> Answer | None:
    """An Answer from a raw chat-completions body (None when the body is not one)."""
    if not isinstance(body, dict) or not body.get("choices"):
        return None
    choice = body["choices"][0]
    message = choice.get("message") or {}
    usage = body.get("usage") or {}
    prompt = usage.get("prompt_tokens_details") or {}
    completion = usage.get("completion_tokens_details") or {}
    audio, reasoning = int(prompt.get("audio_tokens") or 0), int(completion.get("reasoning_tokens") or 0)
    finish = str(choice.get("finish_reason") or "")
    blocked = f"answer stopped ({finish})" if finish in _BLOCKING_FINISH else None
    if not blocked and message.get("refusal"):
        blocked = f"refused: {str(message['refusal'])[:200]}"
    calls = message.get("tool_calls") or []
    return Answer(
        text=calls[0]["function"]["arguments"] if calls else message.get("content") or None,
        usage=TokenUsage(
            input_text_tokens=max(int(usage.get("prompt_tokens") or 0) - audio, 0),
            input_audio_tokens=audio,
            cached_tokens=int(prompt.get("cached_tokens") or 0),
            output_tokens=max(int(usage.get("completion_tokens") or 0) - reasoning, 0),
            thinking_tokens=reasoning,
        ),
        model=body.get("model") or model,
        blocked=blocked,
    )


def usage_from(message: Any) -> TokenUsage:
    """LangChain's standard ``usage_metadata`` as token counts (images count as input text: chat APIs do not split
    them out)."""
    meta = getattr(message, "usage_metadata", None) or {}
    inputs = meta.get("input_token_details") or {}
    outputs = meta.get("output_token_details") or {}
    audio = int(inputs.get("audio") or 0)
    reasoning = int(outputs.get("reasoning") or 0)
    return TokenUsage(
        input_text_tokens=max(int(meta.get("input_tokens") or 0) - audio, 0),
        input_audio_tokens=audio,
        cached_tokens=int(inputs.get("cache_read") or 0),
        output_tokens=max(int(meta.get("output_tokens") or 0) - reasoning, 0),
        thinking_tokens=reasoning,
    )


def answer_text(message: Any) -> str | None:
    """The JSON the model wrote: the tool call's arguments (function calling) or the message text (json_schema)."""
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        return json.dumps(calls[0].get("args"))
    content = message.content
    if isinstance(content, list):
        content = "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    return content or None


def video_frames(path: str, count: int, max_side: int = 768) -> list[tuple[float, bytes]]:
    """``count`` evenly spaced frames as JPEG bytes with their times, decoded by seeking (never the whole file)."""
    import av
    from PIL import Image

    frames: list[tuple[float, bytes]] = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 90000)
        duration = float(container.duration / 1e6) if container.duration else float((stream.duration or 0) * time_base)
        times = [duration * (i + 0.5) / count for i in range(count)] if duration > 0 else [0.0]
        for t in times:
            container.seek(int(t / time_base), stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.time is None or frame.time + 1e-3 >= t or duration <= 0:
                    image: Image.Image = frame.to_image()
                    image.thumbnail((max_side, max_side))
                    buffer = _jpeg(image)
                    frames.append((round(float(frame.time or t), 2), buffer))
                    break
    return frames


def _jpeg(image: Any) -> bytes:
    import io

    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()


class LangChainProvider:
    name = "langchain"
    supports_batch = False

    def __init__(self, settings: Settings, chat_model: Any | None = None) -> None:
        self.settings = settings
        self.chat = chat_model if chat_model is not None else make_chat_model(settings)
        spec_model = split_spec(settings.langchain_model)[1] if settings.langchain_model else None
        self.model = (
            settings.langchain_price_model
            or spec_model
            or getattr(self.chat, "model_name", None)
            or getattr(self.chat, "model", None)
            or type(self.chat).__name__
        )

    @contextlib.contextmanager
    def media(self, item: MediaItem) -> Generator[list[dict[str, Any]], None, None]:
        if item.modality == "image":
            yield [{"type": "image_url", "image_url": {"url": item.data_uri()}}]
            return
        if item.path is None:
            raise Permanent("video has no local file")
        try:
            frames = video_frames(item.path, self.settings.langchain_video_frames)
        except Exception as exc:  # PyAV raises its own error types for damaged files
            raise Permanent(f"cannot sample frames: {type(exc).__name__}") from exc
        parts: list[dict[str, Any]] = []
        for t, jpeg in frames:
            parts.append({"type": "text", "text": f"Frame at {t:.2f} s:"})
            url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
            parts.append({"type": "image_url", "image_url": {"url": url}})
        yield parts

    def generate(self, media: list[dict[str, Any]], prompt: str, response_model: type[BaseModel]) -> Answer:
        """One attempt. The raw message and its usage come back in every case (invalid JSON, off-schema, content
        filter, refusal): the runner validates the text, repairs once, and bills the tokens the provider reported."""
        from langchain_core.messages import HumanMessage

        message = HumanMessage(content=[{"type": "text", "text": prompt}, *media])
        _LAST_BODY.value = None
        try:
            result = self._runnable(response_model).invoke([message])
        except Exception as exc:
            if filtered := prompt_filtered(exc):
                return Answer(text=None, usage=TokenUsage(), model=self.model, blocked=filtered)
            # An answer arrived (and is billed) but LangChain raised on it, e.g. AzureChatOpenAI on a content
            # filter: build the Answer from the raw body instead of losing its tokens.
            if (answer := answer_from_body(getattr(_LAST_BODY, "value", None), self.model)) is not None:
                return answer
            raise classify(exc) from exc
        raw = result["raw"] if isinstance(result, dict) else result
        metadata = getattr(raw, "response_metadata", None) or {}
        return Answer(
            text=answer_text(raw),
            usage=usage_from(raw),
            model=metadata.get("model_name") or metadata.get("model") or self.model,
            blocked=blocked_reason(raw),
        )

    def _runnable(self, response_model: type[BaseModel]) -> Any:
        """The chat model asked for JSON that follows ``response_model``, answering the raw message.

        OpenAI and Azure OpenAI models get the strict JSON schema as ``response_format`` inside ``extra_body``:
        langchain-openai sends any ``response_format`` argument through the SDK's ``parse()``, which raises on a
        content filter or a truncated answer (and, with a Pydantic schema, on invalid or off-schema JSON) before
        LangChain can return the raw message, so the tokens already paid for would be lost. Through ``extra_body``
        the same request is a plain ``create()``. Other chat models parse after the call, so
        ``with_structured_output(include_raw=True)`` keeps the raw message there."""
        if _is_openai_chat(self.chat):
            from openai.lib._parsing._completions import type_to_response_format_param

            response_format = type_to_response_format_param(response_model)
            extra_body = {**(getattr(self.chat, "extra_body", None) or {}), "response_format": response_format}
            return self.chat.bind(extra_body=extra_body)
        return self.chat.with_structured_output(response_model, include_raw=True, method="json_schema")


def _is_openai_chat(chat: Any) -> bool:
    try:
        from langchain_openai.chat_models.base import BaseChatOpenAI
    except ImportError:
        return False
    return isinstance(chat, BaseChatOpenAI) and not getattr(chat, "use_responses_api", None)


def blocked_reason(message: Any) -> str | None:
    """Why the model gave no usable answer on purpose: a content filter stopped it, or it refused."""
    metadata = getattr(message, "response_metadata", None) or {}
    finish = str(metadata.get("finish_reason") or "")
    if finish in _BLOCKING_FINISH:
        return f"answer stopped ({finish})"
    refusal = (getattr(message, "additional_kwargs", None) or {}).get("refusal")
    if refusal:
        return f"refused: {str(refusal)[:200]}"
    return None


def prompt_filtered(exc: BaseException) -> str | None:
    """Azure OpenAI refuses a prompt its content filter flags with HTTP 400 and error code ``content_filter``:
    a verdict on the creative (status ``blocked``, not asked again), not a failure. No usage comes with it."""
    current: BaseException | None = exc
    while current is not None:
        body = getattr(current, "body", None)
        error = body.get("error", body) if isinstance(body, dict) else {}
        codes = {getattr(current, "code", None), error.get("code") if isinstance(error, dict) else None}
        if "content_filter" in codes:
            return "prompt blocked (content_filter)"
        current = current.__cause__
    return None
