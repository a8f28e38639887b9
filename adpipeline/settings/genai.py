"""Features from a model: the provider (offline, Gemini, LangChain), its credentials, prices and the run budget,
Batch mode, rate limits and retries (adpipeline/features/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from adpipeline.settings.base import Domain


class GenAISettings(Domain):
    """Which extractor writes the features and, for the model providers, how they are called and paid for."""

    title = "Features: providers, models, prices and limits"
    readme = "adpipeline/features/README.md"

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

    @model_validator(mode="after")
    def _provider_needs(self) -> Self:
        if self.feature_provider == "gemini" and self.gemini_api_key is None and self.gemini_base_url is None:
            raise ValueError("ADP_FEATURE_PROVIDER=gemini needs ADP_GEMINI_API_KEY")
        if self.feature_provider == "langchain" and not self.langchain_model:
            raise ValueError("ADP_FEATURE_PROVIDER=langchain needs ADP_LANGCHAIN_MODEL")
        return self
