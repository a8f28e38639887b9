"""Creative features: the schema (as data) and the providers that answer it.

Heavy dependencies (rapidocr, OpenCV, PyAV) load only when an extractor runs.
"""

from adpipeline.features.schema import (
    FEATURES,
    PROMPT_VERSION,
    Feature,
    ImageFeatures,
    VideoFeatures,
    render_prompt,
    to_row,
)

__all__ = [
    "FEATURES",
    "PROMPT_VERSION",
    "Feature",
    "ImageFeatures",
    "VideoFeatures",
    "render_prompt",
    "to_row",
]
