"""Gemini through google-genai: structured output with ``response_schema``, inline media or the Files API, usage by
modality, and Batch mode.

One HTTP attempt per :meth:`GeminiProvider.generate` (the SDK's own retries are switched off); the runner in
:mod:`adpipeline.features.llm` retries, limits the rate and validates.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from typing import Any

from pydantic import BaseModel

from adpipeline.features.llm import Answer, MediaItem, Permanent, ProviderError, classify
from adpipeline.features.pricing import TokenUsage
from adpipeline.settings import Settings

_BLOCKING_FINISH = {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"}
_MIN_THINKING = {"gemini-2.5-pro": 128}
"""Models whose thinking cannot be switched off, and the smallest budget they take."""
_MODALITY_FIELD = {
    "TEXT": "input_text_tokens",
    "DOCUMENT": "input_text_tokens",
    "IMAGE": "input_image_tokens",
    "VIDEO": "input_video_tokens",
    "AUDIO": "input_audio_tokens",
}


def make_client(settings: Settings) -> Any:
    """A google-genai client with SDK retries off and the request timeout from the settings."""
    from google import genai
    from google.genai import types

    key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key is not None else "unused-local"
    options = types.HttpOptions(
        base_url=settings.gemini_base_url,
        api_version=settings.gemini_api_version,
        timeout=int(settings.genai_timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key=key, http_options=options)


def usage_from(metadata: Any) -> TokenUsage:
    """Token counts from a response's ``usage_metadata``, input split by modality (text when not detailed)."""
    usage = TokenUsage()
    if metadata is None:
        return usage
    details = getattr(metadata, "prompt_tokens_details", None) or []
    for detail in details:
        modality = getattr(detail.modality, "value", detail.modality) or "TEXT"
        name = _MODALITY_FIELD.get(str(modality).upper(), "input_text_tokens")
        setattr(usage, name, getattr(usage, name) + (detail.token_count or 0))
    prompt = metadata.prompt_token_count or 0
    if usage.input_tokens < prompt:  # undetailed remainder (or no details at all) counts as text
        usage.input_text_tokens += prompt - usage.input_tokens
    usage.cached_tokens = metadata.cached_content_token_count or 0
    usage.output_tokens = metadata.candidates_token_count or 0
    usage.thinking_tokens = metadata.thoughts_token_count or 0
    return usage


def blocked_reason(response: Any) -> str | None:
    """Why Gemini refused (prompt blocked, or the only candidate stopped for safety); None when it answered."""
    feedback = getattr(response, "prompt_feedback", None)
    if feedback is not None and feedback.block_reason:
        return f"prompt blocked ({getattr(feedback.block_reason, 'value', feedback.block_reason)})"
    candidates = response.candidates or []
    if not candidates:
        return None
    finish = getattr(candidates[0].finish_reason, "value", candidates[0].finish_reason)
    if finish in _BLOCKING_FINISH:
        return f"answer stopped ({finish})"
    return None


def answer_from(response: Any, model: str) -> Answer:
    blocked = blocked_reason(response)
    text = None
    if not blocked:
        try:
            text = response.text
        except (ValueError, AttributeError):
            text = None
    return Answer(
        text=text,
        usage=usage_from(response.usage_metadata),
        model=response.model_version or model,
        blocked=blocked,
    )


class GeminiProvider:
    """Gemini via google-genai. Images go inline; videos inline up to ``gemini_inline_max_bytes``, else through
    the Files API (uploaded once per item, waited for until ACTIVE, deleted afterwards)."""

    name = "gemini"
    supports_batch = True

    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        from google.genai import types

        self.settings = settings
        self.model = settings.gemini_model
        self.client = client or make_client(settings)
        self._types = types
        floor = next((n for prefix, n in _MIN_THINKING.items() if self.model.startswith(prefix)), 0)
        if settings.genai_thinking_budget < floor:
            raise ValueError(
                f"{self.model} cannot switch thinking off: set ADP_GENAI_THINKING_BUDGET to at least {floor} "
                f"(now {settings.genai_thinking_budget})"
            )

    # ---- media
    @contextlib.contextmanager
    def media(self, item: MediaItem) -> Generator[Any, None, None]:
        types = self._types
        size = item.size_bytes or len(item.read())
        if item.modality == "image" or size <= self.settings.gemini_inline_max_bytes:
            yield types.Part.from_bytes(data=item.read(), mime_type=item.mime_type)
            return
        uploaded = self._upload(item)
        try:
            yield types.Part.from_uri(file_uri=uploaded.uri, mime_type=uploaded.mime_type or item.mime_type)
        finally:
            self._delete(uploaded.name)

    def _upload(self, item: MediaItem) -> Any:
        types = self._types
        try:
            uploaded = self.client.files.upload(
                file=item.path or item.read(), config=types.UploadFileConfig(mime_type=item.mime_type)
            )
        except Exception as exc:
            raise classify(exc) from exc
        deadline = time.monotonic() + self.settings.gemini_file_wait_s
        try:
            while True:
                state = getattr(uploaded.state, "value", uploaded.state)
                if state == "ACTIVE":
                    return uploaded
                if state == "FAILED":
                    raise Permanent(f"Files API could not process the video ({uploaded.name})")
                if time.monotonic() >= deadline:
                    raise Permanent(
                        f"uploaded video still {state} after {self.settings.gemini_file_wait_s:.0f} s "
                        "(gemini_file_wait_s)"
                    )
                time.sleep(self.settings.gemini_file_poll_s)
                try:
                    uploaded = self.client.files.get(name=uploaded.name)
                except Exception as exc:
                    raise classify(exc) from exc
        except ProviderError:
            self._delete(uploaded.name)
            raise

    def _delete(self, name: str | None) -> None:
        if not name:
            return
        with contextlib.suppress(Exception):  # the file expires after 48 h anyway
            self.client.files.delete(name=name)

    # ---- calls
    def config(self, response_model: type[BaseModel]) -> Any:
        types = self._types
        resolution = self.settings.gemini_media_resolution
        return types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=response_model,
            temperature=0.0,
            media_resolution=f"MEDIA_RESOLUTION_{resolution.upper()}" if resolution else None,
            thinking_config=types.ThinkingConfig(thinking_budget=self.settings.genai_thinking_budget),
        )

    def generate(self, media: Any, prompt: str, response_model: type[BaseModel]) -> Answer:
        try:
            response = self.client.models.generate_content(
                model=self.model, contents=[media, prompt], config=self.config(response_model)
            )
        except Exception as exc:
            raise classify(exc) from exc
        return answer_from(response, self.model)
