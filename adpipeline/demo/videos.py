"""The demo's videos: short clips with a product on a panning background, a lower third with headline and call to
action, and public-domain face photos composited in at planned times (``VIDEO_PLANS``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from adpipeline.demo.banners import RGB, default_font, draw_badge, draw_button, draw_product, gradient, lighter

ASSETS_DIR = Path(__file__).parent / "assets" / "faces"
VIDEOS_SUBDIR = Path("media") / "videos"


# --- face photos -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FacePhoto:
    person: str
    file: str  # relative to ASSETS_DIR
    box: tuple[int, int, int, int]  # dlib frontal detector box (left, top, right, bottom), measured once


# Boxes were measured with dlib's HOG detector (1 upsample). astronaut.jpg has a second, false detection on the
# suit patch (y > 330); the crop below stays well above it.
FACE_PHOTOS: dict[str, FacePhoto] = {
    p.file: p
    for p in (
        FacePhoto("obama", "obama/obama.jpg", (349, 142, 617, 409)),
        FacePhoto("obama", "obama/obama2.jpg", (171, 290, 438, 558)),
        FacePhoto("obama", "obama/obama3.jpg", (633, 277, 954, 598)),
        FacePhoto("biden", "biden/biden.jpg", (419, 241, 740, 562)),
        FacePhoto("eileen_collins", "eileen_collins/astronaut.jpg", (175, 76, 265, 166)),
        FacePhoto("grace_hopper", "grace_hopper/grace_hopper.jpg", (180, 139, 366, 325)),
    )
}
# Crop margins around the face box, as multiples of its size: generous, head and shoulders.
_CROP_SIDE, _CROP_TOP, _CROP_BOTTOM = 0.5, 0.45, 0.6


_CARD_FACE_PX = 150  # cards are stored at this face height, a little above the largest size drawn


@cache
def face_card(file: str) -> tuple[Image.Image, float]:
    """Head-and-shoulders crop of a face photo with a white frame; returns (card, face height / card height)."""
    photo = FACE_PHOTOS[file]
    with Image.open(ASSETS_DIR / file) as source:
        im = source.convert("RGB")
    left, top, right, bottom = photo.box
    fw, fh = right - left, bottom - top
    crop = (
        max(0, round(left - _CROP_SIDE * fw)),
        max(0, round(top - _CROP_TOP * fh)),
        min(im.width, round(right + _CROP_SIDE * fw)),
        min(im.height, round(bottom + _CROP_BOTTOM * fh)),
    )
    card = im.crop(crop)
    scale = _CARD_FACE_PX / fh
    card = card.resize((round(card.width * scale), round(card.height * scale)), Image.Resampling.LANCZOS)
    fh = _CARD_FACE_PX
    border = max(4, card.width // 60)
    framed = Image.new("RGB", (card.width + 2 * border, card.height + 2 * border), (250, 250, 250))
    framed.paste(card, (border, border))
    return framed, fh / framed.height


# --- videos ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Appearance:
    photo: str  # key of FACE_PHOTOS
    start_s: float
    end_s: float
    slot: str  # "center", "left", "right"


@dataclass(frozen=True)
class VideoPlan:
    duration_s: int
    audio: bool
    product: str
    headline: str
    discount: int | None
    cast: tuple[Appearance, ...] = field(default_factory=tuple)


GH, OB1, OB2, OB3 = "grace_hopper/grace_hopper.jpg", "obama/obama.jpg", "obama/obama2.jpg", "obama/obama3.jpg"
BI, EC = "biden/biden.jpg", "eileen_collins/astronaut.jpg"
VIDEO_PLANS: tuple[VideoPlan, ...] = (
    VideoPlan(8, True, "bottle", "Glow Serum - now in stores", None, (Appearance(GH, 0, 8, "center"),)),
    VideoPlan(10, True, "sneaker", "Run with us", 20, (Appearance(GH, 0, 6, "left"), Appearance(OB1, 3, 10, "right"))),
    VideoPlan(12, False, "phone", "Voltix X2 - learn more", None, (Appearance(GH, 2, 12, "center"),)),
    VideoPlan(7, True, "mug", "Fresh roast, every morning", None, (Appearance(OB2, 0, 7, "center"),)),
    VideoPlan(
        9,
        False,
        "watch",
        "Tempo - track every step",
        15,
        (Appearance(OB3, 0, 5, "left"), Appearance(BI, 4, 9, "right")),
    ),
    VideoPlan(10, True, "bag", "Carryall city totes", None, (Appearance(BI, 1, 10, "center"),)),
    VideoPlan(6, True, "headphones", "Sonique - hear every detail", None, (Appearance(EC, 0, 6, "center"),)),
    VideoPlan(
        8, False, "bottle", "Night Repair Oil", 25, (Appearance(EC, 0, 8, "left"), Appearance(BI, 0, 8, "right"))
    ),
    VideoPlan(6, True, "sneaker", "Trail ready - shop the drop", None),
    VideoPlan(10, False, "phone", "Two-day battery", 10),
    VideoPlan(5, True, "mug", "Brewhaus - order today", None),
    VideoPlan(11, True, "headphones", "Pure sound, zero noise", None, (Appearance(OB1, 0, 11, "center"),)),
    VideoPlan(
        9, False, "watch", "Smart watch, smarter you", 30, (Appearance(GH, 1, 9, "left"), Appearance(EC, 1, 9, "right"))
    ),
    VideoPlan(15, True, "bag", "Carry more, worry less", None),
)
VIDEO_SIZE = (640, 360)
VIDEO_FPS = 10
AUDIO_RATE = 22050
_PAN = (96, 54)  # background canvas margin the camera pans over


def video_codec() -> tuple[str, str]:
    import av

    if "libx264" in av.codecs_available:
        return "libx264", "h264"
    return "mpeg4", "mpeg4"


def _video_background(plan: VideoPlan, rng: np.random.Generator) -> Image.Image:
    w, h = VIDEO_SIZE[0] + _PAN[0], VIDEO_SIZE[1] + _PAN[1]
    hue = rng.uniform(0, 1)
    top = _hsv(hue, 0.35, 0.95)
    bottom = _hsv((hue + 0.08) % 1, 0.55, 0.7)
    img = gradient(w, h, top, bottom)
    d = ImageDraw.Draw(img)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 90)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=lighter(bottom, float(rng.uniform(0.15, 0.4))))
    colour = _hsv((hue + 0.5) % 1, 0.7, 0.8)
    # The product sits where faces do not: the right edge with people, the centre without.
    box: tuple[float, float, float, float]
    if plan.cast:
        box = (w - _PAN[0] - 135, h - 250, w - _PAN[0] - 5, h - 110)
    else:
        box = (w / 2 - 120, h / 2 - 150, w / 2 + 120, h / 2 + 90)
    draw_product(d, plan.product, box, colour)
    return img


def _hsv(h: float, s: float, v: float) -> RGB:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (int(255 * r), int(255 * g), int(255 * b))


def _lower_third(plan: VideoPlan, brand_colour: RGB) -> np.ndarray:
    w, bar_h = VIDEO_SIZE[0], 52
    img = Image.new("RGB", (w, bar_h), (18, 18, 22))
    d = ImageDraw.Draw(img)
    d.text((14, 12), plan.headline, font=default_font(24), fill=(255, 255, 255))
    x = w - 14
    cta = "Shop now" if plan.discount else "Learn more"
    bw = default_font(18).getlength(cta) + 2 * 18 * 0.8
    draw_button(d, x - bw, 6, cta, 18, brand_colour, (255, 255, 255))
    if plan.discount:
        draw_badge(d, x - bw - 34, bar_h / 2, 46, f"-{plan.discount}%", (220, 38, 38))
    return np.asarray(img)


def _slot_geometry(slot: str, n_people: int) -> tuple[float, float, float]:
    """(centre x, centre y, face height in px) of a card slot; faces stay >= 100 px tall."""
    w, h = VIDEO_SIZE
    face_h = 118.0 if n_people == 1 else 104.0
    cx = {"center": w * 0.4, "left": w * 0.26, "right": w * 0.62}[slot]
    return cx, h * 0.42, face_h


def render_video(path: Path, plan: VideoPlan, seed: int, index: int) -> None:
    import av

    rng = np.random.default_rng([seed, 2, index])
    bg = np.asarray(_video_background(plan, rng))
    brand_colour = _hsv(float(rng.uniform(0, 1)), 0.75, 0.75)
    bar = _lower_third(plan, brand_colour)
    w, h = VIDEO_SIZE
    n_frames = plan.duration_s * VIDEO_FPS
    pan_dir = rng.choice([-1, 1], size=2)
    zoom_rate = float(rng.uniform(0.04, 0.1))
    wobble = float(rng.uniform(8, 18))
    n_people = len({a.slot for a in plan.cast})
    cards = []
    for a in plan.cast:
        card, face_frac = face_card(a.photo)
        cx, cy, face_h = _slot_geometry(a.slot, n_people)
        cards.append((a, card, face_frac, cx, cy, face_h))

    codec, _ = video_codec()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w", format="mp4") as container:
        vs = container.add_stream(codec, rate=VIDEO_FPS)
        assert isinstance(vs, av.VideoStream)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.thread_count = 1  # the encoder's output depends on its thread count: keep it fixed
        if codec == "libx264":
            vs.options = {"preset": "veryfast", "crf": "24"}
        else:
            vs.bit_rate = 800_000
        as_ = container.add_stream("aac", rate=AUDIO_RATE, layout="mono") if plan.audio else None

        for i in range(n_frames):
            t = i / VIDEO_FPS
            p = i / max(1, n_frames - 1)
            ox = int(round(_PAN[0] / 2 + pan_dir[0] * (p - 0.5) * _PAN[0]))
            oy = int(round(_PAN[1] / 2 + pan_dir[1] * (p - 0.5) * _PAN[1] * 0.6))
            frame = bg[oy : oy + h, ox : ox + w].copy()
            for a, card, face_frac, cx, cy, face_h in cards:
                if not (a.start_s <= t < a.end_s):
                    continue
                local = (t - a.start_s) / max(1e-6, a.end_s - a.start_s)
                scale = (face_h / face_frac) / card.height * (1 + zoom_rate * local)
                cw, ch = max(1, round(card.width * scale)), max(1, round(card.height * scale))
                resized = np.asarray(card.resize((cw, ch), Image.Resampling.BILINEAR))
                x0 = int(round(cx + wobble * math.sin(2 * math.pi * local) - cw / 2))
                y0 = int(round(cy - ch / 2))
                fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + cw), min(h - bar.shape[0], y0 + ch)
                frame[fy0:fy1, fx0:fx1] = resized[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
            frame[h - bar.shape[0] :] = bar
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for packet in vs.encode(vf):
                container.mux(packet)
        for packet in vs.encode():
            container.mux(packet)

        if as_ is not None:
            arng = np.random.default_rng([seed, 3, index])
            freq = float(arng.choice([220.0, 261.63, 329.63, 392.0, 440.0]))
            n_samples = plan.duration_s * AUDIO_RATE
            chunk = 1024
            for s0 in range(0, n_samples, chunk):
                n = min(chunk, n_samples - s0)
                ts = (s0 + np.arange(n)) / AUDIO_RATE
                env = 0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * ts) ** 2
                x = 0.18 * env * np.sin(2 * np.pi * freq * ts) + 0.02 * arng.standard_normal(n)
                af = av.AudioFrame.from_ndarray(x.astype(np.float32)[None, :], format="fltp", layout="mono")
                af.sample_rate = AUDIO_RATE
                af.pts = s0
                for packet in as_.encode(af):
                    container.mux(packet)
            for packet in as_.encode():
                container.mux(packet)
    tmp.replace(path)
