"""An image's orientation: one rule for every table that stores it (``image_hashes``, ``video_metadata``,
``image_features``, ``video_features``), below both media and features (it imports neither).

Square means width and height within :data:`SQUARE_TOLERANCE` (5 %) of each other, as the features schema declares
("Landscape, portrait or square (within 5%)"); the tests pin 1000 x 1040 as square.
"""

from __future__ import annotations

__all__ = ["ORIENTATIONS", "SQUARE_TOLERANCE", "orientation"]

ORIENTATIONS: tuple[str, ...] = ("landscape", "portrait", "square")
SQUARE_TOLERANCE = 0.05  # |width / height - 1| up to this is square


def orientation(width: int, height: int) -> str:
    """``square`` within :data:`SQUARE_TOLERANCE`, else ``landscape`` (wider) or ``portrait`` (taller)."""
    ratio = width / height
    if abs(ratio - 1.0) <= SQUARE_TOLERANCE:
        return "square"
    return "landscape" if ratio > 1.0 else "portrait"
