"""What a model call costs: the versioned price table (``prices.toml``) and pre-call estimates, in the token counts of
:class:`adpipeline.tables.TokenUsage` (``genai_usage``'s token columns; imported from here by the providers).

Costs are computed from the token counts a provider reports, never from the provider's own bill; the price table's
``version`` goes into every ledger row's ``price_version`` so a bill can be recomputed after a price change.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from adpipeline.tables import TokenUsage

Mode = Literal["online", "batch"]

DEFAULT_TABLE = Path(__file__).with_name("prices.toml")

# Gemini's published token arithmetic: an image costs 258 tokens per 768x768 tile (images with both sides at most
# 384 px cost one tile); a second of video about 263 tokens (frames at 1 fps, default media resolution) plus 32
# for its audio track.
IMAGE_TILE_PX = 768
IMAGE_TOKENS_PER_TILE = 258
VIDEO_TOKENS_PER_S = 263
AUDIO_TOKENS_PER_S = 32
OUTPUT_TOKENS_ESTIMATE = 700
"""Output tokens assumed per answer when estimating (the feature JSON is ~400-900 tokens)."""


class PriceTableError(ValueError):
    """The price table is missing, malformed, or has no entry for a model: raised before any call is made."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model (see ``prices.toml`` for what each field means)."""

    input: float
    output: float
    input_audio: float | None = None
    cached: float | None = None
    cached_audio: float | None = None
    batch_discount: float = 0.0
    long_context_tokens: int | None = None
    input_long: float | None = None
    output_long: float | None = None
    cached_long: float | None = None
    retired: str | None = None

    def cost(self, usage: TokenUsage, mode: Mode = "online") -> float:
        """USD for one call. Cached tokens are part of the input counts and billed at the cached rates instead
        (taken off the text/image/video input first, then off the audio); thinking tokens are billed as output;
        a prompt over ``long_context_tokens`` bills every token at the long-context rates."""
        long = self.long_context_tokens is not None and usage.input_tokens > self.long_context_tokens
        input_rate = (self.input_long or self.input) if long else self.input
        output_rate = (self.output_long or self.output) if long else self.output
        audio_rate = self.input_audio if self.input_audio is not None else input_rate
        cached_rate = (self.cached_long if long else None) or self.cached
        cached_rate = input_rate if cached_rate is None else cached_rate
        cached_audio_rate = self.cached_audio if self.cached_audio is not None else cached_rate
        if self.cached is None and self.cached_audio is None:
            cached_audio_rate = audio_rate  # no cache discount published: bill as uncached audio
        visual_text = usage.input_text_tokens + usage.input_image_tokens + usage.input_video_tokens
        cached = min(usage.cached_tokens, usage.input_tokens)
        cached_visual = min(cached, visual_text)
        cached_audio = min(cached - cached_visual, usage.input_audio_tokens)
        dollars = (
            (visual_text - cached_visual) * input_rate
            + (usage.input_audio_tokens - cached_audio) * audio_rate
            + cached_visual * cached_rate
            + cached_audio * cached_audio_rate
            + (usage.output_tokens + usage.thinking_tokens) * output_rate
        ) / 1e6
        if mode == "batch":
            dollars *= 1 - self.batch_discount
        return round(dollars, 8)


@dataclass(frozen=True)
class PriceTable:
    version: str
    models: dict[str, ModelPrice] = field(default_factory=dict)

    def price(self, model: str, *, include_retired: bool = False) -> ModelPrice:
        """The entry for ``model``: exact name, else the longest listed name it starts with. A retired model is a
        :class:`PriceTableError` unless ``include_retired`` (to price old ledger rows)."""
        name = model.removeprefix("models/")
        found = self.models.get(name)
        if found is None:
            prefixes = sorted((m for m in self.models if name.startswith(m)), key=len, reverse=True)
            found = self.models[prefixes[0]] if prefixes else None
        if found is None:
            raise PriceTableError(
                f"the price table (version {self.version}) has no entry for model {model!r}; add it to prices.toml "
                f"or point ADP_PRICE_TABLE at a table that has it (listed: {', '.join(sorted(self.current()))})"
            )
        if found.retired and not include_retired:
            raise PriceTableError(
                f"model {model!r} was retired on {found.retired} (price table version {self.version}); "
                f"choose a current one: {', '.join(sorted(self.current()))}"
            )
        return found

    def current(self) -> list[str]:
        """The models that are not retired."""
        return [name for name, price in self.models.items() if not price.retired]

    def cost(self, model: str, usage: TokenUsage, mode: Mode = "online") -> float:
        return self.price(model, include_retired=True).cost(usage, mode)


@lru_cache(maxsize=8)
def load_prices(path: Path | None = None) -> PriceTable:
    """Read a price table (TOML); the packaged one when ``path`` is None."""
    path = path or DEFAULT_TABLE
    try:
        data: dict[str, Any] = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"cannot read the price table {path}: {exc}") from exc
    if "version" not in data or not isinstance(data.get("models"), dict):
        raise PriceTableError(f"price table {path} needs a `version` and a [models.<name>] table per model")
    try:
        models = {name: ModelPrice(**entry) for name, entry in data["models"].items()}
    except TypeError as exc:
        raise PriceTableError(f"price table {path}: {exc}") from exc
    return PriceTable(version=str(data["version"]), models=models)


# --- estimates (before any call) ---------------------------------------------------------------------------------
def text_tokens(text: str) -> int:
    """Rough token count of text (about 4 characters a token), for estimates only."""
    return math.ceil(len(text) / 4)


def image_tokens(width: int | None, height: int | None) -> int:
    """Gemini's tile arithmetic: one tile for small images, else 258 tokens per 768x768 tile after the image is
    scaled to fit tiles (unknown size: one tile)."""
    if not width or not height or (width <= 384 and height <= 384):
        return IMAGE_TOKENS_PER_TILE
    return math.ceil(width / IMAGE_TILE_PX) * math.ceil(height / IMAGE_TILE_PX) * IMAGE_TOKENS_PER_TILE


def video_tokens(duration_s: float | None, has_audio: bool | None) -> tuple[int, int]:
    """(video tokens, audio tokens) for a video of that length; unknown length counts as 30 s."""
    seconds = math.ceil(duration_s if duration_s and duration_s > 0 else 30.0)
    return seconds * VIDEO_TOKENS_PER_S, seconds * AUDIO_TOKENS_PER_S if has_audio is not False else 0


def estimate_usage(
    prompt: str,
    *,
    width: int | None = None,
    height: int | None = None,
    duration_s: float | None = None,
    has_audio: bool | None = None,
    video: bool = False,
    thinking_tokens: int = 0,
) -> TokenUsage:
    """The tokens one extraction call is expected to use (prompt + media + a typical answer + the whole thinking
    budget: a model may think up to it, and thinking is billed as output)."""
    usage = TokenUsage(
        input_text_tokens=text_tokens(prompt), output_tokens=OUTPUT_TOKENS_ESTIMATE, thinking_tokens=thinking_tokens
    )
    if video:
        usage.input_video_tokens, usage.input_audio_tokens = video_tokens(duration_s, has_audio)
    else:
        usage.input_image_tokens = image_tokens(width, height)
    return usage
