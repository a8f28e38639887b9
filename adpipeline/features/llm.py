"""Running a model provider over many creatives: rate limits, retries, validation, one repair, budget, cache, ledger.

A provider (:mod:`adpipeline.features.gemini`, :mod:`adpipeline.features.langchain`) makes **one** HTTP attempt per
:meth:`LLMProvider.generate` call and translates its SDK's errors into :class:`ProviderError`; everything else lives
here, once:

- retries with exponential backoff on 429 (honouring Retry-After), 5xx, timeouts and connection errors; never on
  other 4xx (SDK-level retries are switched off by the providers);
- a :class:`RateLimiter` (requests and tokens per minute) in front of every attempt;
- strict validation of the answer against the response model, one repair call with the validation errors, then a
  status row ``invalid_response`` with the raw text kept;
- a :class:`Budget`: an item whose estimated cost does not fit is not called and gets ``skipped_budget``;
- a :class:`FeatureCache` keyed by content hash + provider + model + prompt version, so identical bytes are never
  paid for twice;
- one ``genai_usage`` row per call with tokens by modality, cost, latency and attempts.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import email.utils
import importlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from adpipeline import tables
from adpipeline.features import schema
from adpipeline.features.budget import Budget, estimate_cost
from adpipeline.features.pricing import Mode, PriceTable, TokenUsage
from adpipeline.features.schema import Modality

log = logging.getLogger("adpipeline.features")


# --- what a provider sees and returns -----------------------------------------------------------------------------
@dataclass
class MediaItem:
    """One creative to extract: its bytes (images) or a local file (videos), and facts used for estimates."""

    creative_id: str
    modality: Modality
    sha256: str
    mime_type: str
    data: bytes | None = None
    path: str | None = None
    size_bytes: int = 0
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    has_audio: bool | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise ValueError(f"{self.creative_id}: no bytes and no path")
        with open(self.path, "rb") as handle:
            return handle.read()

    def data_uri(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.read()).decode()}"


@dataclass
class Answer:
    """What one successful HTTP exchange returned."""

    text: str | None
    usage: TokenUsage
    model: str
    blocked: str | None = None
    """Why the provider refused to answer (safety, recitation...); None when it answered."""


class ProviderError(Exception):
    """One failed attempt, classified. ``status`` becomes the row's status when retries run out."""

    retryable = False
    status = "failed"

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RateLimited(ProviderError):
    retryable = True
    status = "rate_limited"


class Transient(ProviderError):
    """5xx, timeouts, connection errors."""

    retryable = True


class Permanent(ProviderError):
    """Other 4xx, a file that never became ready, media the provider cannot take."""


class UnreadableResponse(Exception):
    """An HTTP 200 whose body is not the API's JSON (a proxy's error page, a truncated body): worth another try."""


def _transient_types() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, connection-level failures) of the HTTP stacks the SDKs use; a stack that is not installed adds
    nothing. Connection resets and servers hanging up mid-answer (httpx ``ReadError``, ``RemoteProtocolError``) are
    connection failures; a request the client could not even build (``LocalProtocolError``, ``UnsupportedProtocol``)
    is not."""
    timeouts: list[type[BaseException]] = [TimeoutError]
    connection: list[type[BaseException]] = [ConnectionError]
    for module in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError):
            lib = importlib.import_module(module)
            timeouts.append(lib.TimeoutException)
            connection += [lib.NetworkError, lib.RemoteProtocolError, lib.ProxyError]
    with contextlib.suppress(ImportError):
        import openai

        timeouts.append(openai.APITimeoutError)
        connection.append(openai.APIConnectionError)
    with contextlib.suppress(ImportError):
        import requests

        timeouts.append(requests.Timeout)
        connection.append(requests.ConnectionError)
    with contextlib.suppress(ImportError):
        import aiohttp

        timeouts.append(aiohttp.ServerTimeoutError)
        connection += [aiohttp.ClientConnectionError, aiohttp.ClientPayloadError]
    return tuple(timeouts), tuple(connection)


_TRANSIENT: tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]] | None = None


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries: google-genai ``code``, openai ``status_code``, httpx/requests
    ``response.status_code``. openai's ``code`` is an error string and is ignored."""
    candidates = [getattr(exc, "status_code", None), getattr(exc, "code", None)]
    response = getattr(exc, "response", None)
    if response is not None:
        candidates.append(getattr(response, "status_code", None))
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return None


def _seconds(value: Any) -> float | None:
    """A delay as sent: ``"7"`` / ``7.5`` (seconds), ``"7s"`` / ``"0.5s"`` (protobuf Duration JSON),
    ``{"seconds": 7, "nanos": 5e8}``, or an HTTP date (seconds from now)."""
    if isinstance(value, dict):
        return float(value.get("seconds") or 0) + float(value.get("nanos") or 0) / 1e9
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    with contextlib.suppress(ValueError):
        return float(text.removesuffix("s"))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(text)
        return (when - dt.datetime.now(dt.UTC)).total_seconds()
    return None


def _retry_info(body: Any) -> float | None:
    """``retryDelay`` of a ``google.rpc.RetryInfo`` anywhere in an error body (Gemini puts it in
    ``error.details[]``)."""
    if isinstance(body, dict):
        if str(body.get("@type", "")).endswith("google.rpc.RetryInfo") and "retryDelay" in body:
            return _seconds(body["retryDelay"])
        values: Iterable[Any] = body.values()
    elif isinstance(body, list):
        values = body
    else:
        return None
    for value in values:
        if (found := _retry_info(value)) is not None:
            return found
    return None


def retry_delay(exc: BaseException) -> float | None:
    """When the provider asked to come back: ``retry-after-ms`` / ``Retry-After`` headers (OpenAI, Azure) or the
    body's ``google.rpc.RetryInfo.retryDelay`` (Gemini sends only that); None when it did not say."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is not None:
        with contextlib.suppress(TypeError, ValueError):
            if (ms := headers.get("retry-after-ms")) is not None:
                return max(float(ms) / 1000, 0.0)
        if (seconds := _seconds(headers.get("retry-after"))) is not None:
            return max(seconds, 0.0)
    body = getattr(exc, "details", None) or getattr(exc, "body", None)  # google-genai / openai parsed JSON
    if body is None and response is not None:
        with contextlib.suppress(Exception):
            body = response.json()
    found = _retry_info(body)
    return max(found, 0.0) if found is not None else None


def classify(exc: BaseException) -> ProviderError:
    """An SDK exception (google-genai, openai, LangChain, httpx, requests, aiohttp) as a :class:`ProviderError`.

    By HTTP status when the error carries one (429 rate limited, with the provider's retry delay; 408 and 5xx
    transient; other 4xx permanent), else by exception type through the ``__cause__`` chain: timeouts, connection
    resets and hang-ups, and an HTTP 200 whose body is not JSON are transient; anything else is permanent. The
    reason keeps the status and the provider's short message only: request bodies (media, prompts) and keys never
    reach a status row or a log line."""
    global _TRANSIENT
    if _TRANSIENT is None:
        _TRANSIENT = _transient_types()
    timeouts, connection = _TRANSIENT
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = _status_code(current)
        if code is not None:
            message = str(getattr(current, "message", None) or "").strip()[:200]
            reason = f"HTTP {code}" + (f": {message}" if message else "")
            if code == 429:
                return RateLimited(reason, retry_after=retry_delay(current))
            if code >= 500 or code == 408:
                return Transient(reason, retry_after=retry_delay(current))
            return Permanent(reason)
        kind = type(current).__name__
        if isinstance(current, timeouts):
            return Transient(f"timeout ({kind})")
        if isinstance(current, connection):
            return Transient(f"connection error ({kind})")
        if isinstance(current, UnreadableResponse | json.JSONDecodeError):
            return Transient(f"unreadable response ({kind}: {str(current)[:120]})")
        current = current.__cause__
    return Permanent(f"{type(exc).__name__}: {str(exc)[:200]}")


class LLMProvider(Protocol):
    name: str
    model: str
    supports_batch: bool

    def media(self, item: MediaItem) -> contextlib.AbstractContextManager[Any]:
        """Prepare the media once for all calls on one item (e.g. a Files API upload, deleted on exit)."""
        ...

    def generate(self, media: Any, prompt: str, response_model: type[BaseModel]) -> Answer:
        """One attempt; raises :class:`ProviderError`."""
        ...


# --- rate limiter -------------------------------------------------------------------------------------------------
class RateLimiter:
    """Requests-per-minute and tokens-per-minute, as a generic cell-rate algorithm: requests are spaced evenly
    (``60 / rpm`` apart, after an initial burst), and each request's tokens push the token clock forward.

    Thread-safe; one per task. The limit a task gets is its share of the project's limit (see
    :func:`task_share`), because Airflow's ``genai_api`` pool bounds how many tasks call at once."""

    def __init__(
        self,
        rpm: float,
        tpm: float | None = None,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / rpm
        self.token_s = 60.0 / tpm if tpm else 0.0
        self.burst = max(burst, 1)
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._next_request = self._next_tokens = clock()

    def acquire(self, tokens: int = 0) -> float:
        """Block until one request of ``tokens`` tokens may go; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            slack = (self.burst - 1) * self.interval
            start = max(now, self._next_request - slack, self._next_tokens)
            self._next_request = max(self._next_request, now - slack) + self.interval
            self._next_tokens = max(self._next_tokens, now) + tokens * self.token_s
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)


def task_share(limit: float, slots: int) -> float:
    """A task's share of a project-wide per-minute limit when ``slots`` tasks may call at once."""
    return max(limit / max(slots, 1), 1e-9)


# --- cache --------------------------------------------------------------------------------------------------------
class FeatureCache:
    """Validated answers in the bucket under ``genai_cache/<provider>/<model>/<prompt_version>/<sha256>.json``."""

    def __init__(self, bucket: Any, provider: str, model: str, prompt_version: str) -> None:
        self.bucket = bucket
        self.prefix = f"genai_cache/{provider}/{model.replace('/', '_')}/{prompt_version}"

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}/{sha256}.json"

    def get(self, sha256: str) -> dict[str, Any] | None:
        key = self._key(sha256)
        if not sha256 or not self.bucket.exists(key):
            return None
        return json.loads(self.bucket.get_bytes(key))

    def put(self, sha256: str, answer: dict[str, Any]) -> None:
        if sha256:
            self.bucket.put_bytes(self._key(sha256), json.dumps(answer, sort_keys=True).encode())


# --- parsing ------------------------------------------------------------------------------------------------------
def parse_answer(text: str | None, response_model: type[BaseModel]) -> BaseModel:
    """Strict validation of a JSON answer (a surrounding Markdown code fence is tolerated)."""
    if text is None or not text.strip():
        raise ValueError("empty answer")
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return response_model.model_validate_json(body)


def repair_prompt(prompt: str, bad_text: str | None, error: str) -> str:
    shown = (bad_text or "")[:4000]
    return (
        f"{prompt}\n\nYour previous answer could not be used: {error[:1500]}\n"
        f"Previous answer:\n{shown}\n\n"
        "Answer again with one JSON object that follows the response schema exactly: every field present, "
        "null or [] where the creative does not show it, no other keys."
    )


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:20])
    return str(exc)[:500]


# --- the runner ---------------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """The result for one item: a feature row and the ledger rows of the calls it took (none on a cache hit)."""

    row: tables.ImageFeatureRow | tables.VideoFeatureRow
    usage: list[tables.GenAIUsage] = field(default_factory=list)
    cached: bool = False


@dataclass
class Runner:
    provider: LLMProvider
    prices: PriceTable
    run_id: str
    limiter: RateLimiter
    budget: Budget
    cache: FeatureCache | None = None
    max_retries: int = 4
    backoff_s: float = 1.0
    max_retry_after_s: float = 120.0
    concurrency: int = 4
    thinking_budget: int = 0
    """Thinking tokens the provider lets the model spend per call (``genai_thinking_budget``), counted in estimates."""
    prompt_version: str = schema.PROMPT_VERSION
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    # ---- estimates
    def estimate(self, item: MediaItem, mode: Mode = "online") -> tuple[TokenUsage, float]:
        """Tokens and USD one call on ``item`` is expected to cost, the whole thinking budget included."""
        return estimate_cost(
            self.prices,
            self.provider.model,
            item.modality,
            width=item.width,
            height=item.height,
            duration_s=item.duration_s,
            has_audio=item.has_audio,
            thinking_budget=self.thinking_budget,
            mode=mode,
        )

    # ---- many items
    def run(
        self,
        items: Iterable[MediaItem],
        on_done: Callable[[Outcome], None] | None = None,
        *,
        cache_checked: bool = False,
    ) -> list[Outcome]:
        """Extract every item (``concurrency`` at a time); ``on_done`` sees each outcome as it completes, in the
        calling thread (the stage writes results in chunks from it, so a killed task keeps what it finished)."""
        items = list(items)
        self.prices.price(self.provider.model)  # an unknown model fails here, before any call
        outcomes: list[Outcome] = []
        extract = self.extract_paid if cache_checked else self.extract
        with ThreadPoolExecutor(max_workers=max(self.concurrency, 1), thread_name_prefix="genai") as pool:
            futures = [pool.submit(extract, item) for item in items]
            for future in as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                if on_done is not None:
                    on_done(outcome)
        return outcomes

    # ---- one item
    def extract(self, item: MediaItem) -> Outcome:
        """The cached answer for the item's bytes, else a paid extraction."""
        return self.from_cache(item) or self.extract_paid(item)

    def from_cache(self, item: MediaItem) -> Outcome | None:
        if self.cache is None or (hit := self.cache.get(item.sha256)) is None:
            return None
        try:
            return Outcome(self._row(item, schema.response_model(item.modality).model_validate(hit)), cached=True)
        except ValidationError:
            log.warning("%s: cached answer no longer validates; calling again", item.creative_id)
            return None

    def extract_paid(self, item: MediaItem) -> Outcome:
        """Reserve the estimate, call (with retries and one repair), settle the budget with the real cost."""
        response_model = schema.response_model(item.modality)
        _, estimate = self.estimate(item)
        if not self.budget.reserve(estimate):
            limit = self.budget.limit
            reason = f"estimated ${estimate:.4f} does not fit this task's share of the run budget (${limit:.4f})"
            return Outcome(self.status_row(item, "skipped_budget", reason))
        calls: list[tables.GenAIUsage] = []
        try:
            row = self._extract_paid(item, response_model, calls)
        except Exception as exc:  # a bug or an SDK surprise on one item must not lose the others
            log.exception("%s: extraction failed", item.creative_id)
            row = self.status_row(item, "failed", f"{type(exc).__name__}: {str(exc)[:300]}")
        self.budget.settle(estimate, sum(c.cost_usd for c in calls))
        return Outcome(row, calls)

    def _extract_paid(self, item: MediaItem, response_model: type[BaseModel], calls: list[tables.GenAIUsage]) -> Any:
        prompt = schema.render_prompt(item.modality)
        try:
            with self.provider.media(item) as media:
                answer = self._call(item, media, prompt, response_model, calls)
                if answer.blocked:
                    return self.status_row(item, "blocked", f"provider refused: {answer.blocked}")
                try:
                    parsed = parse_answer(answer.text, response_model)
                except (ValidationError, ValueError) as first:
                    log.info("%s: answer failed validation, one repair attempt", item.creative_id)
                    fix = repair_prompt(prompt, answer.text, _error_text(first))
                    answer = self._call(item, media, fix, response_model, calls)
                    if answer.blocked:
                        return self.status_row(item, "blocked", f"provider refused: {answer.blocked}")
                    try:
                        parsed = parse_answer(answer.text, response_model)
                    except (ValidationError, ValueError) as second:
                        calls[-1].status = "invalid_response"
                        reason = f"invalid after one repair: {_error_text(second)}"
                        return self.status_row(item, "invalid_response", reason, raw=(answer.text or "")[:20000])
        except ProviderError as exc:
            return self.status_row(item, exc.status, exc.reason)
        if self.cache is not None:
            self.cache.put(item.sha256, parsed.model_dump(mode="json"))
        return self._row(item, parsed)

    def _call(
        self,
        item: MediaItem,
        media: Any,
        prompt: str,
        response_model: type[BaseModel],
        calls: list[tables.GenAIUsage],
    ) -> Answer:
        """One logical call with retries; appends its ledger row (also when it finally fails)."""
        tokens = self.estimate(item)[0].input_tokens
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire(tokens)
            try:
                answer = self.provider.generate(media, prompt, response_model)
            except ProviderError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    calls.append(self._ledger(item, None, attempt, started, exc.status, exc.reason))
                    raise
                log.info("%s: %s (attempt %d), retrying in %.1f s", item.creative_id, exc.reason, attempt, delay)
                self.sleep(delay)
                continue
            status = "blocked" if answer.blocked else "ok"
            calls.append(self._ledger(item, answer, attempt, started, status, answer.blocked))
            return answer

    def _retry_delay(self, exc: ProviderError, attempt: int) -> float | None:
        if not exc.retryable or attempt > self.max_retries:
            return None
        if exc.retry_after is not None:
            if exc.retry_after > self.max_retry_after_s:
                return None
            return exc.retry_after
        return self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())  # noqa: S311 - jitter, not crypto

    # ---- rows
    def _ledger(
        self, item: MediaItem, answer: Answer | None, attempts: int, started: float, status: str, reason: str | None
    ) -> tables.GenAIUsage:
        usage = answer.usage if answer is not None else TokenUsage()
        model = answer.model if answer is not None and answer.model else self.provider.model
        return tables.GenAIUsage(
            call_id=uuid.uuid4().hex,
            creative_id=item.creative_id,
            modality=item.modality,
            provider=self.provider.name,
            model=model,
            mode="online",
            prompt_version=self.prompt_version,
            **usage.as_columns(),
            cost_usd=self.prices.cost(self.provider.model, usage, "online"),
            latency_ms=int((time.monotonic() - started) * 1000),
            attempts=attempts,
            status=status,
            reason=reason,
            price_version=self.prices.version,
            run_id=self.run_id,
            called_at=self.now(),
        )

    def _row(self, item: MediaItem, parsed: BaseModel) -> Any:
        return schema.to_row(
            item.modality,
            parsed,
            creative_id=item.creative_id,
            provider=self.provider.name,
            model=self.provider.model,
            prompt_version=self.prompt_version,
        )

    def status_row(self, item: MediaItem, status: str, reason: str, raw: str | None = None) -> Any:
        return schema.status_row(
            item.modality,
            creative_id=item.creative_id,
            provider=self.provider.name,
            model=self.provider.model,
            status=status,
            reason=reason,
            prompt_version=self.prompt_version,
            raw_response=raw,
        )
