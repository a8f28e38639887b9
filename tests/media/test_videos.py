"""Video probing with PyAV: facts of a good file, and a status (never an exception) for bad ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from adpipeline.media.videos import probe_video
from adpipeline.settings import Settings
from tests.locked import locked_import

av = locked_import("av")


def _mp4(
    *, frames: int = 20, size: tuple[int, int] = (64, 48), rotation: int = 0, audio: bool = True, video: bool = True
) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=10) if video else None
        if stream is not None:
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            if rotation:
                stream.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None
        if stream is not None:
            for i in range(frames):
                array = np.full((size[1], size[0], 3), (i * 12) % 255, np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        if sound is not None:
            for _ in range(4):
                frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                frame.sample_rate = 16000
                for packet in sound.encode(frame):
                    container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
    return buf.getvalue()


@pytest.fixture()
def plain() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_good_video_facts(plain: Settings, tmp_path: Path) -> None:
    data = _mp4()
    facts = probe_video(data, plain)
    assert facts.status == "ok", facts.reason
    assert (facts.width, facts.height, facts.codec, facts.has_audio, facts.audio_codec) == (
        64,
        48,
        "mpeg4",
        True,
        "aac",
    )
    assert facts.fps == 10 and facts.frame_count == 20 and 1.9 <= (facts.duration_s or 0) <= 2.2
    assert facts.orientation == "landscape" and facts.rotation == 0 and facts.bit_rate
    path = tmp_path / "v.mp4"
    path.write_bytes(data)
    assert probe_video(str(path), plain).frame_count == 20
    row = facts.to_row("c1", "sha")
    assert row.status == "ok" and row.width == 64


def test_rotation_from_display_matrix(plain: Settings) -> None:
    facts = probe_video(_mp4(rotation=90), plain)
    assert facts.status == "ok" and facts.rotation in (90, 270)
    assert (facts.width, facts.height, facts.orientation) == (48, 64, "portrait")


def test_silent_video(plain: Settings) -> None:
    facts = probe_video(_mp4(audio=False), plain)
    assert facts.status == "ok" and facts.has_audio is False and facts.audio_codec is None


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: b"", "empty"),
        (lambda: np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes(), "corrupt"),
        (lambda: _mp4(audio=True, video=False), "no_video_stream"),
        (lambda: b"<html>not a video</html>", "corrupt"),
    ],
)
def test_bad_videos_get_a_status(make, status, plain: Settings) -> None:
    facts = probe_video(make(), plain)
    assert facts.status == status, facts.reason
    assert facts.to_row("c1", None).status == status


def test_truncated_mp4(plain: Settings) -> None:
    data = _mp4(frames=60)
    for cut in (len(data) // 2, len(data) - 200):
        facts = probe_video(data[:cut], plain)
        assert facts.status in ("truncated", "corrupt"), (cut, facts)


def test_probe_from_a_remote_bucket_through_a_streamed_temporary_copy(plain: Settings) -> None:
    import uuid

    from adpipeline.bucket import Bucket

    remote = Bucket(f"memory://adp-{uuid.uuid4().hex}")
    with remote.blob_writer() as writer:
        writer.write(_mp4())
        _, key = writer.commit()
    with remote.local_file(key) as path:
        assert probe_video(path, plain).frame_count == 20
