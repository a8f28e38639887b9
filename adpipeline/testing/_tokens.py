"""Token arithmetic the LLM stubs report, close to the providers' published rules.

* text: ``ceil(chars / 4)`` for both providers;
* Gemini image: 258 when both sides are <= 384 px, else 258 per 768x768 tile; 258 when the size is unreadable;
* Gemini video 263 tokens/s, audio 32 tokens/s;
* OpenAI image: ``detail="low"`` → 85; else fit into 2048x2048, shortest side to 768, then 85 + 170 per 512x512 tile
  (765, i.e. a 1024x1024 image, when the size is unreadable).
"""

from __future__ import annotations

import base64
import binascii
import io
import math

from PIL import Image, UnidentifiedImageError

GEMINI_IMAGE_TOKENS = 258
GEMINI_VIDEO_TOKENS_PER_S = 263
GEMINI_AUDIO_TOKENS_PER_S = 32


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def decode_base64(data: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not (the google-genai SDK sends URL-safe)."""
    data = data.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4))
    except binascii.Error:
        return b""


def image_size(data: bytes) -> tuple[int, int] | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def gemini_image_tokens(data: bytes) -> int:
    size = image_size(data)
    if size is None or max(size) <= 384:
        return GEMINI_IMAGE_TOKENS
    width, height = size
    return GEMINI_IMAGE_TOKENS * math.ceil(width / 768) * math.ceil(height / 768)


def openai_image_tokens(data: bytes | None, detail: str) -> int:
    if detail == "low":
        return 85
    width, height = (data and image_size(data)) or (1024, 1024)
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    return 85 + 170 * math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
