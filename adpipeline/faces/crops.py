"""Where face crops live in the bucket: one key per track, under one prefix.

The faces stage writes them, privacy deletes them, the insights page serves only keys under the prefix, and
``tables.BUCKET_KEYS`` finds them at the end of old absolute paths. This module imports nothing, so every layer
can use it.
"""

from __future__ import annotations

CROP_PREFIX = "faces/crops/"
"""Bucket prefix of every face crop (the best crop of a track, which a unique face's ``best_crop_path`` names)."""


def crop_key(track_id: str) -> str:
    """Bucket key of a track's best face crop (deleted with the person)."""
    return f"{CROP_PREFIX}{track_id}.jpg"
