"""The offline extractor end to end on images and videos rendered here (one OCR engine for the module)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from adpipeline import tables, text_reader
from adpipeline.features import offline, schema
from adpipeline.settings import Settings

LLM_ONLY = [f.id for f in schema.FEATURES if not f.answered_by & {schema.OFFLINE, schema.METADATA}]


def render(
    lines: list[tuple[str, int]],
    size: tuple[int, int] = (800, 600),
    bg=(200, 30, 30),
    fg=(255, 255, 255),
    fmt: str = "PNG",
) -> bytes:
    image = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(image)
    y = 60
    for text, font_size in lines:
        draw.text((50, y), text, fill=fg, font=ImageFont.load_default(size=font_size))
        y += font_size + 40
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def make_video(
    path: Path,
    scenes: list[tuple[tuple[int, int, int], str | None, float]],
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
) -> Path:
    import av

    with av.open(str(path), "w") as container:
        codecs = av.codecs_available
        stream = container.add_stream("libx264" if "libx264" in codecs else "mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for colour, text, seconds in scenes:
            for i in range(int(seconds * fps)):
                image = Image.new("RGB", size, colour)
                draw = ImageDraw.Draw(image)
                draw.ellipse((10 + i * 3, 160, 50 + i * 3, 200), fill=(255, 255, 255))  # motion within a scene
                if text:
                    draw.multiline_text((20, 30), text, fill=(255, 255, 255), font=ImageFont.load_default(size=36))
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(_env_file=None)


@pytest.fixture(scope="module")
def extractor(settings: Settings) -> offline.OfflineExtractor:
    return offline.OfflineExtractor(settings)


@pytest.fixture(scope="module")
def sale_row(extractor: offline.OfflineExtractor) -> tables.ImageFeatureRow:
    return extractor.extract_image(render([("SALE -30%", 90), ("Shop now", 60)]), "sale")


def test_sale_banner(sale_row: tables.ImageFeatureRow) -> None:
    row = sale_row
    assert (row.status, row.provider, row.reason) == ("ok", "offline", None)
    assert row.model.startswith("offline-v3+rapidocr-")
    assert row.prompt_version == schema.PROMPT_VERSION == offline.OfflineExtractor.prompt_version
    assert row.has_text is True and "30%" in (row.text or "")
    assert "percent_off" in row.promotions and row.discount_percent == 30
    assert row.cta_kind == "shop" and (row.call_to_action or "").lower() == "shop now"
    assert row.language == "en"
    assert row.dominant_colors[0] == "red" and row.dominant_colors_hex[0].startswith("#")
    assert row.orientation == "landscape"
    assert 0 < (row.text_area_share or 0) < 0.5 and row.text_position == "top"
    assert 0.5 < (row.ocr_confidence or 0) <= 1


def test_fields_it_cannot_know_stay_null(sale_row: tables.ImageFeatureRow) -> None:
    for feature_id in LLM_ONLY:
        for column in schema.FEATURES_BY_ID[feature_id].columns:
            assert getattr(sale_row, column, None) in (None, []), column
    assert sale_row.face_count is None  # no face counter given


def test_offers_and_learn_more(extractor: offline.OfflineExtractor) -> None:
    data = render(
        [("Free shipping on all orders", 40), ("Buy 1 Get 1 free", 40), ("Learn more", 40)],
        bg=(255, 255, 255),
        fg=(20, 30, 120),
        fmt="JPEG",
    )
    row = extractor.extract_image(data, "offers")
    assert row.status == "ok"
    assert {"free_shipping", "bogo"} <= set(row.promotions)
    assert row.cta_kind == "learn"
    assert row.dominant_colors[0] == "white"


def test_image_without_text(extractor: offline.OfflineExtractor) -> None:
    row = extractor.extract_image(render([], size=(400, 700), bg=(20, 120, 40)), "blank")
    assert (row.status, row.has_text, row.text, row.language) == ("ok", False, None, None)
    assert row.promotions == [] and row.call_to_action is None and row.cta_kind is None
    assert row.text_area_share == 0.0 and row.text_position is None
    assert row.orientation == "portrait" and row.dominant_colors == ["green"]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", "corrupt"),
        (b"definitely not an image", "corrupt"),
        (render([("SALE", 40)], fmt="PNG")[:300], "corrupt"),  # truncated
    ],
)
def test_bad_image_bytes_give_a_status_row(extractor: offline.OfflineExtractor, data: bytes, status: str) -> None:
    row = extractor.extract_image(data, "bad")
    assert row.status == status and row.reason
    assert row.text is None and row.dominant_colors == [] and row.brightness is None


def test_image_over_the_pixel_cap_is_rejected(settings: Settings) -> None:
    small_cap = offline.OfflineExtractor(settings.model_copy(update={"max_image_pixels": 1000}))
    row = small_cap.extract_image(render([("x", 20)], size=(100, 100)), "big")
    assert row.status == "failed" and "max_image_pixels" in (row.reason or "")


def test_ocr_disabled_leaves_text_unknown(settings: Settings) -> None:
    no_ocr = offline.OfflineExtractor(settings.model_copy(update={"ocr_enabled": False}))
    row = no_ocr.extract_image(render([("SALE -30%", 90)]), "no-ocr")
    assert no_ocr.model == "offline-v3+no-ocr"
    assert (row.status, row.has_text, row.text, row.cta_kind) == ("ok", None, None, None)
    assert row.dominant_colors == ["red"]


def test_face_counter_is_used_when_given(settings: Settings) -> None:
    seen: list[tuple[int, ...]] = []

    def count(rgb: np.ndarray) -> int:
        seen.append(rgb.shape)
        return 2

    with_faces = offline.OfflineExtractor(settings.model_copy(update={"ocr_enabled": False}), face_counter=count)
    assert with_faces.extract_image(render([], size=(120, 80)), "faces").face_count == 2
    assert seen == [(80, 120, 3)]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


def test_ocr_models_load_from_the_wheel_without_network(no_network: None) -> None:
    import rapidocr_onnxruntime

    models = sorted(p.name for p in (Path(rapidocr_onnxruntime.__file__).parent / "models").glob("*.onnx"))
    assert len(models) == 3  # detection, direction, recognition: shipped in the wheel
    engine = text_reader.ocr_engine(threads=1)  # a second engine, built here with sockets refused
    rgb = np.asarray(Image.open(io.BytesIO(render([("Learn more", 60)], size=(500, 200)))))
    assert "learn more" in text_reader.run_ocr(rgb, threads=1).text.lower()
    assert text_reader.ocr_engine(threads=1) is engine  # created once per process


# --- videos -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenes = [
        ((20, 40, 160), None, 2.0),
        ((30, 140, 40), "New season", 2.0),
        ((200, 30, 30), "SALE -50%\nShop now", 2.0),
    ]
    return make_video(tmp_path_factory.mktemp("video") / "ad.mp4", scenes)


def test_video_features(extractor: offline.OfflineExtractor, video: Path) -> None:
    row = extractor.extract_video(str(video), "vid", has_audio=False)
    assert (row.status, row.provider, row.has_audio) == ("ok", "offline", False)
    assert row.scene_count == 3
    assert {"green", "red"} <= set(row.dominant_colors)
    assert row.orientation == "landscape"
    assert any("50%" in text for text in row.on_screen_text)
    assert len(row.on_screen_text) == len(row.on_screen_text_times_s)
    assert row.on_screen_text_times_s == sorted(row.on_screen_text_times_s)
    assert row.on_screen_text_times_s[-1] > 4.0
    assert "percent_off" in row.promotions and row.discount_percent == 50
    assert row.cta_kind == "shop"
    for feature_id in LLM_ONLY:
        for column in schema.FEATURES_BY_ID[feature_id].columns:
            assert getattr(row, column) in (None, []), column


def test_video_sampling_seeks_to_evenly_spaced_frames(settings: Settings, tmp_path: Path) -> None:
    import av

    path = make_video(tmp_path / "long.mp4", [((90, 90, 90), None, 20.0)], fps=10, size=(64, 48))
    sampler = offline.OfflineExtractor(settings.model_copy(update={"offline_video_max_frames": 4}))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sampler._decode_samples(container, stream, float(stream.duration * stream.time_base))
    assert [f.time_s for f in frames] == pytest.approx([2.5, 7.5, 12.5, 17.5], abs=0.3)
    assert frames[0].small.shape == (48, 64, 3)
    assert [f.full is not None for f in frames] == [True, False, True, True]  # 3 OCR frames, the last included


@pytest.mark.parametrize(("content", "status"), [(b"\x00" * 2048, "corrupt"), (b"", "corrupt"), (None, "failed")])
def test_bad_video_gives_a_status_row(
    extractor: offline.OfflineExtractor, tmp_path: Path, content: bytes | None, status: str
) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    row = extractor.extract_video(str(path), "bad", has_audio=None)
    assert row.status == status and row.reason
    assert row.scene_count is None and row.dominant_colors == []


def test_an_image_file_is_not_a_video(extractor: offline.OfflineExtractor, tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    path.write_bytes(render([("SALE", 40)], size=(200, 100)))
    row = extractor.extract_video(str(path), "still")
    # FFmpeg reads a PNG as a one-frame video: it must not crash either way.
    assert row.status in ("ok", "corrupt")
