"""Images for the insights page and the checks on uploads.

Nothing here takes a path from a request: thumbnails are read from the bucket by content key (a validated sha256),
face crops by the key the warehouse holds for a face, and uploads are checked in memory with the same rules as
fetched media (size cap, magic bytes, guarded decode) before anything else sees them.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from adpipeline.bucket import Bucket
from adpipeline.faces.crops import CROP_PREFIX
from adpipeline.media.images import ALLOWED_FORMATS, MediaError, decode_image, sniff_image_format
from adpipeline.settings import Settings
from adpipeline.tables import BUCKET_KEYS

SHA256 = re.compile(r"[0-9a-f]{64}")
FACE_ID = re.compile(r"[A-Za-z0-9_.-]{1,128}")
THUMB_SIDES = (96, 160, 320)
# Container signatures of the video formats the face engine reads (PyAV decodes far more; we accept only these).
_VIDEO_MAGIC = {
    "mp4": lambda d: d[4:8] == b"ftyp",  # MP4 / MOV / M4V / 3GP
    "webm": lambda d: d[:4] == b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    "avi": lambda d: d[:4] == b"RIFF" and d[8:12] == b"AVI ",
}


class UploadError(Exception):
    """An upload that is refused: ``status`` is the HTTP status, ``reason`` the message shown."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _allowed_image(data: bytes) -> bool:
    """The bytes announce an image format the media stage decodes (the same magic-number check as fetching)."""
    return sniff_image_format(data[:64]) in ALLOWED_FORMATS


def check_image_upload(data: bytes, settings: Settings) -> bytes:
    """An uploaded photo: within the image byte cap, an allowed image format, decodable within the pixel cap."""
    if len(data) > settings.max_image_bytes:
        raise UploadError(413, f"photo is over the cap of {settings.max_image_bytes} bytes")
    if not _allowed_image(data):
        raise UploadError(415, "photo is not a JPEG, PNG, WebP, GIF or BMP image")
    try:
        decode_image(data, settings.max_image_pixels)
    except MediaError as exc:
        code = 413 if exc.status in ("too_large", "too_many_pixels") else 422
        raise UploadError(code, f"photo: {exc.status}: {exc.reason}") from exc
    return data


def check_video_upload(data: bytes, settings: Settings) -> bytes:
    """An uploaded video: within the caps and a container the face engine reads (MP4/MOV, WebM/MKV, AVI)."""
    cap = min(settings.max_video_bytes, settings.insights_max_upload_bytes)
    if len(data) > cap:
        raise UploadError(413, f"video is over the cap of {cap} bytes")
    if not data:
        raise UploadError(422, "video is empty")
    if not any(check(data[:16]) for check in _VIDEO_MAGIC.values()):
        raise UploadError(415, "video is not an MP4/MOV, WebM/MKV or AVI file")
    return data


def blob_thumbnail(bucket: Bucket, sha256: str, side: int, max_pixels: int) -> bytes:
    """A JPEG thumbnail (longest side ``side``) of the image stored under a content key."""
    if not SHA256.fullmatch(sha256):
        raise UploadError(404, "not a content key")
    if side not in THUMB_SIDES:
        raise UploadError(404, "no such thumbnail size")
    return _thumbnail(bucket.url, bucket, sha256, side, max_pixels)


@lru_cache(maxsize=1024)
def _thumbnail(_bucket_url: str, bucket: Bucket, sha256: str, side: int, max_pixels: int) -> bytes:
    key = Bucket.blob_key(sha256)
    if not bucket.exists(key):
        raise UploadError(404, "no such content")
    data = bucket.get_bytes(key)
    if not _allowed_image(data):
        raise UploadError(404, "content is not an image")
    try:
        image, _format, _animated = decode_image(data, max_pixels)
    except MediaError as exc:
        raise UploadError(404, f"content is not a usable image ({exc.status})") from exc
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=82)
    return out.getvalue()


def crop_bytes(bucket: Bucket, uri: str | None) -> bytes:
    """The bytes of a face crop whose bucket key the warehouse holds (or a URL under this bucket, from rows written
    before keys were stored); only keys under the crops folder of this bucket."""
    key = bucket.key_of(uri)
    if key is None and isinstance(uri, str):  # an old row's absolute path from a home since moved: its key's tail
        found = re.search(BUCKET_KEYS["faces"]["best_crop_path"], uri)
        key = found.group(0) if found else None
    if key is None or not key.startswith(CROP_PREFIX) or not bucket.exists(key):
        raise UploadError(404, "no crop for this face")
    return bucket.get_bytes(key)


def best_frame_jpeg(video_path: Path, time_s: float, settings: Settings, max_side: int = 640) -> bytes | None:
    """The sampled frame at ``time_s`` (a verification's best frame), as JPEG. Uses the faces stage's own sampler
    with the same settings, so it is the frame the verification looked at, rotation applied; None if unreadable."""
    from adpipeline.faces.video import _VideoError, sample_frames

    best: tuple[float, np.ndarray] | None = None
    try:
        for t, rgb, _scale in sample_frames(
            str(video_path), settings.face_sample_fps, settings.face_max_frames, max_side
        ):
            if best is None or abs(t - time_s) < abs(best[0] - time_s):
                best = (t, rgb)
            if t >= time_s:
                break
    except _VideoError:
        return None
    if best is None:
        return None
    out = io.BytesIO()
    Image.fromarray(best[1]).save(out, format="JPEG", quality=85)
    return out.getvalue()
