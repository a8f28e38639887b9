"""Video facts from the container and stream headers, with PyAV.

PyAV (the ``av`` wheel) bundles FFmpeg's libraries, so nothing has to be installed on the worker (Cloud Composer
images have no ffmpeg binary) and no subprocess is spawned per file. The facts come from the demuxer's headers;
only the first video frame is decoded, to read the display-matrix rotation and to prove the stream decodes. A
truncated file is found by walking the packet index (demuxing reads packet headers, it does not decode).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

from adpipeline import geometry, tables
from adpipeline.media.images import aspect_label_of
from adpipeline.settings import Settings


@dataclass(frozen=True)
class VideoFacts:
    """``status`` is ``ok`` or ``corrupt`` / ``truncated`` / ``no_video_stream`` / ``empty`` / ``too_large``."""

    status: str
    reason: str | None = None
    container: str | None = None
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: float | None = None
    orientation: str | None = None
    aspect_label: str | None = None
    codec: str | None = None
    bit_rate: int | None = None
    has_audio: bool | None = None
    audio_codec: str | None = None
    rotation: int | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_row(self, creative_id: str, sha256: str | None) -> tables.VideoMetadata:
        return tables.VideoMetadata(
            creative_id=creative_id,
            sha256=sha256,
            status=self.status,
            reason=self.reason,
            duration_s=self.duration_s,
            fps=self.fps,
            frame_count=self.frame_count,
            width=self.width,
            height=self.height,
            aspect_ratio=self.aspect_ratio,
            orientation=self.orientation,
            codec=self.codec,
            bit_rate=self.bit_rate,
            has_audio=self.has_audio,
            audio_codec=self.audio_codec,
            rotation=self.rotation,
        )


def probe_video(source: str | bytes, settings: Settings) -> VideoFacts:
    """Facts of one video (a local path or the bytes). Never raises for bad input: returns a status instead."""
    import av

    if isinstance(source, bytes):
        if not source:
            return VideoFacts(status="empty", reason="zero bytes")
        if len(source) > settings.max_video_bytes:
            return VideoFacts(status="too_large", reason=f"{len(source)} bytes is over the cap")
        handle: str | io.BytesIO = io.BytesIO(source)
    else:
        handle = source
    try:
        container = av.open(handle, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        return VideoFacts(status="corrupt", reason=f"cannot open: {_message(exc)}")
    with container:
        try:
            return _facts(container)
        except (av.error.FFmpegError, OSError, ValueError, ZeroDivisionError, OverflowError) as exc:
            return VideoFacts(status="corrupt", reason=_message(exc))


def _facts(container: av.container.InputContainer) -> VideoFacts:  # type: ignore[name-defined]  # noqa: F821
    import av

    audio = container.streams.audio[0] if container.streams.audio else None
    if not container.streams.video:
        return VideoFacts(
            status="no_video_stream",
            reason="audio only" if audio else "no streams",
            container=container.format.name,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio else None,
        )
    video = container.streams.video[0]
    width, height = video.codec_context.width, video.codec_context.height
    rate = video.average_rate or video.guessed_rate or video.base_rate
    fps = float(rate) if rate else None
    duration = None
    if container.duration:
        duration = container.duration / av.time_base
    elif video.duration and video.time_base:
        duration = float(video.duration * video.time_base)
    frames = video.frames or (round(duration * fps) if duration and fps else None)
    bit_rate = container.bit_rate or video.bit_rate or None

    # Rotation lives in the display-matrix side data; FFmpeg applies it to decoded frames, so decode one.
    rotation = None
    packets = 0
    truncated = False
    try:
        for frame in container.decode(video=0):
            rotation = int(frame.rotation) % 360
            break
    except av.error.FFmpegError as exc:
        return VideoFacts(status="corrupt", reason=f"first frame does not decode: {_message(exc)}")
    if rotation is None:
        return VideoFacts(status="corrupt", reason="no decodable video frame")
    # Walk the rest of the packet index without decoding: a file cut short ends before the frames it declares.
    try:
        container.seek(0)
        for packet in container.demux(video):
            if packet.size:
                packets += 1
    except av.error.FFmpegError:
        truncated = True
    if video.frames and packets < video.frames:
        truncated = True
    if truncated:
        return VideoFacts(
            status="truncated",
            reason=f"{packets} of {video.frames or '?'} frames present",
            container=container.format.name,
            codec=video.codec_context.name,
            width=width,
            height=height,
        )
    display_w, display_h = (height, width) if rotation in (90, 270) else (width, height)
    sar = video.sample_aspect_ratio
    if sar and sar != Fraction(0) and sar != 1:
        display_w = round(display_w * float(sar)) if rotation not in (90, 270) else display_w
    ok = bool(display_w and display_h)
    return VideoFacts(
        status="ok",
        container=container.format.name,
        duration_s=round(duration, 3) if duration is not None else None,
        fps=round(fps, 3) if fps else None,
        frame_count=frames,
        width=display_w,
        height=display_h,
        aspect_ratio=round(display_w / display_h, 4) if ok else None,
        orientation=geometry.orientation(display_w, display_h) if ok else None,
        aspect_label=aspect_label_of(display_w, display_h) if ok else None,
        codec=video.codec_context.name,
        bit_rate=int(bit_rate) if bit_rate else None,
        has_audio=audio is not None,
        audio_codec=audio.codec_context.name if audio else None,
        rotation=rotation,
    )


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]
