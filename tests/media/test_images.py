"""Image decoding and facts: golden dHashes, the format allow-list, bombs, and the odd pixel formats."""

from __future__ import annotations

import io
import json
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from adpipeline.media import images
from adpipeline.media.images import MediaError, analyse_image
from adpipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN = json.loads((FIXTURES / "golden_dhash.json").read_text())


@pytest.fixture()
def plain() -> Settings:
    return Settings(_env_file=None, max_image_pixels=5_000_000)  # type: ignore[call-arg]


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_dhash_matches_imagehash_golden(name: str, plain: Settings) -> None:
    data = (FIXTURES / name).read_bytes()
    facts = analyse_image(data, plain)
    assert facts.dhash_hex == GOLDEN[name]
    with Image.open(FIXTURES / name) as image:
        assert facts.dhash_hex == str(imagehash.dhash(image.convert("RGB")))
    assert facts.dhash == images.to_signed64(int(GOLDEN[name], 16))
    assert -(2**63) <= facts.dhash < 2**63
    row = facts.to_row("c1", "s" * 64)
    assert (
        row.dhash_hex == GOLDEN[name] and 0 < len(row.fine_thumb or "") <= 12_288
    )  # worst case (noise) is base64 of 24,576 raw bytes


def test_geometry_labels(plain: Settings) -> None:
    facts = analyse_image((FIXTURES / "landscape.png").read_bytes(), plain)
    assert (facts.width, facts.height, facts.orientation, facts.aspect_label) == (191, 100, "landscape", "1.91:1")
    assert analyse_image((FIXTURES / "story.bmp").read_bytes(), plain).aspect_label == "9:16"
    assert analyse_image((FIXTURES / "square.jpg").read_bytes(), plain).orientation == "square"
    assert images.aspect_label_of(1080, 1350) == "4:5" and images.aspect_label_of(1000, 700) is None


def test_orientation_is_the_features_rule(plain: Settings) -> None:
    """Media and the offline extractor store the same orientation: square within 5 % (a 4 % wide image is square)."""
    from adpipeline.features.offline import OfflineExtractor
    from tests.media.conftest import jpeg_bytes

    extractor = OfflineExtractor(Settings(_env_file=None, ocr_enabled=False))  # type: ignore[call-arg]
    for size, expected in (((104, 100), "square"), ((100, 104), "square"), ((106, 100), "landscape")):
        data = jpeg_bytes(size)
        assert analyse_image(data, plain).orientation == expected
        assert extractor.extract_image(data, "c").orientation == expected


def test_webp_and_animated_gif_first_frame(plain: Settings) -> None:
    assert analyse_image((FIXTURES / "portrait.webp").read_bytes(), plain).image_format == "WEBP"
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    frames[0].paste((0, 0, 0), (0, 0, 20, 30))
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    facts = analyse_image(data, plain)
    assert facts.is_animated and facts.image_format == "GIF"
    assert facts.dhash_hex == str(imagehash.dhash(frames[0].convert("P").convert("RGB")))


def test_cmyk_jpeg(plain: Settings) -> None:
    data = _save(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")
    facts = analyse_image(data, plain)
    assert (facts.width, facts.height) == (40, 30)


def test_16_bit_png(plain: Settings) -> None:
    ramp = (np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30).astype(np.uint16)
    data = _save(Image.fromarray(ramp), "PNG")
    facts = analyse_image(data, plain)
    assert facts.width == 64 and facts.dhash_hex


def test_alpha_is_flattened_on_white(plain: Settings) -> None:
    rgba = Image.new("RGBA", (30, 30), (0, 0, 0, 0))
    facts = analyse_image(_save(rgba, "PNG"), plain)
    thumb = images.zlib.decompress(images.base64.b64decode(facts.fine_thumb))
    assert set(thumb[: 128 * 128]) == {255}  # transparent black is white (luma 255), not black


def test_exif_orientation_is_applied(plain: Settings) -> None:
    image = Image.new("RGB", (60, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    facts = analyse_image(_save(image, "JPEG", exif=exif), plain)
    assert (facts.width, facts.height, facts.orientation) == (20, 60, "portrait")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", "empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "unsupported_format"),
        (b"<?xml version='1.0'?>\n<svg xmlns='http://www.w3.org/2000/svg'/>", "unsupported_format"),
        (b"<html>not an image</html>", "not_an_image"),
        (bytes(range(256)) * 4, "not_an_image"),
    ],
)
def test_not_images(data: bytes, status: str, plain: Settings) -> None:
    with pytest.raises(MediaError) as caught:
        analyse_image(data, plain)
    assert caught.value.status == status


def test_tiff_is_an_unsupported_format(plain: Settings) -> None:
    with pytest.raises(MediaError) as caught:
        analyse_image(_save(Image.new("RGB", (8, 8)), "TIFF"), plain)
    assert caught.value.status == "unsupported_format"
    assert caught.value.reason.startswith("TIFF is not supported (allowed: JPEG, PNG")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: (FIXTURES / "square.jpg").read_bytes(), "JPEG"),
        (lambda: (FIXTURES / "portrait.webp").read_bytes(), "WEBP"),
        (lambda: _save(Image.new("RGB", (8, 8)), "TIFF"), "TIFF"),
        (lambda: _save(Image.new("RGB", (8, 8)), "ICO"), "ICO"),
        (lambda: b"\x00\x00\x00\x1cftypheic" + b"\x00" * 20, "HEIC"),
        (lambda: b"\x00\x00\x00\x1cftypisom" + b"\x00" * 20, None),  # an MP4 is not an image
        (lambda: b"%PDF-1.7", None),
    ],
)
def test_sniff_names_formats_without_decoding(make, expected) -> None:
    assert images.sniff_image_format(make()[:64]) == expected


def test_a_png_whose_header_does_not_parse_is_corrupt(plain: Settings) -> None:
    data = bytearray((FIXTURES / "landscape.png").read_bytes())
    data[12:16] = b"XXXX"  # the IHDR chunk type
    with pytest.raises(MediaError) as caught:
        analyse_image(bytes(data), plain)
    assert caught.value.status == "corrupt"


def test_truncated_jpeg_is_corrupt(plain: Settings) -> None:
    data = (FIXTURES / "square.jpg").read_bytes()
    with pytest.raises(MediaError) as caught:
        analyse_image(data[: len(data) // 2], plain)
    assert caught.value.status == "corrupt"


def test_png_decompression_bomb_is_refused_before_decoding(plain: Settings) -> None:
    bomb = _save(Image.new("1", (20_000, 20_000)), "PNG")  # 400 megapixels in a few tens of kB
    assert len(bomb) < 100_000
    with pytest.raises(MediaError) as caught:
        analyse_image(bomb, plain)
    # Pillow's own guard fires first at this size; the message quotes our cap, the setting a user can change.
    assert caught.value.status == "too_many_pixels"
    assert caught.value.reason == "400000000 pixels is over the cap of 5,000,000 (ADP_MAX_IMAGE_PIXELS)"


def test_pixels_over_our_cap_but_under_pillows(plain: Settings) -> None:
    data = _save(Image.new("L", (3000, 2000)), "PNG")  # 6 MP: under Pillow's limit, over the 5 MP cap
    with pytest.raises(MediaError) as caught:
        analyse_image(data, plain)
    assert caught.value.status == "too_many_pixels"
    assert caught.value.reason == "3000x2000 pixels is over the cap of 5,000,000 (ADP_MAX_IMAGE_PIXELS)"
