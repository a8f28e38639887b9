"""The demo's face identity part: a small customer base, the gallery run, one verification, and their summary.

The customer base is written from the shipped public-domain photos (``assets/faces``): four customers who are the
demo's people (one with a folder of two photos), plus two photos that enrolment must reject (two people in one
photo, and a picture without a face). The shipped photos hold only these four people, so no customer here is absent
from every video of the full 14-video demo; in the e2e tests' 4-video slice two of them (Biden, Collins) appear in
no video, which is where "never a forced match" is checked.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

if TYPE_CHECKING:
    from rich.console import Console

    from adpipeline.settings import Settings
    from adpipeline.window import Window

ASSETS_DIR = Path(__file__).parent / "assets" / "faces"
CUSTOMERS = {  # customer id -> photos (relative to ASSETS_DIR); "!mirror" marks a mirrored, darker copy
    "cust_0001": ["obama/obama3.jpg"],
    "cust_0002": ["grace_hopper/grace_hopper.jpg", "grace_hopper/grace_hopper.jpg!mirror"],
    "cust_0003": ["biden/biden.jpg"],
    "cust_0004": ["eileen_collins/astronaut.jpg"],
}
NAMES = {"cust_0001": "obama", "cust_0002": "grace_hopper", "cust_0003": "biden", "cust_0004": "eileen_collins"}


def _rgb(name: str) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(ASSETS_DIR / name)).convert("RGB"))


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_customer_base(folder: Path) -> Path:
    """Write the demo customer base into ``folder`` (idempotent: same bytes every time); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)

    def put(key: str, data: bytes) -> None:
        path = folder / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)

    for customer, photos in CUSTOMERS.items():
        if len(photos) == 1:
            put(f"{customer}.jpg", (ASSETS_DIR / photos[0]).read_bytes())
            continue
        for n, photo in enumerate(photos):
            if photo.endswith("!mirror"):
                rgb = _rgb(photo.removesuffix("!mirror"))[:, ::-1]
                put(f"{customer}/{n}.png", _encode(np.ascontiguousarray((rgb * 0.8).astype(np.uint8)), "PNG"))
            else:
                put(f"{customer}/{n}.jpg", (ASSETS_DIR / photo).read_bytes())
    # Two people in one photo: rejected as more_than_one_face.
    left = np.asarray(Image.fromarray(_rgb("grace_hopper/grace_hopper.jpg")).resize((300, 350)))
    right = np.asarray(Image.fromarray(_rgb("eileen_collins/astronaut.jpg")).resize((300, 350)))
    pair = np.full((350, 620, 3), 200, np.uint8)
    pair[:, :300], pair[:, 320:] = left, right
    put("cust_0005.jpg", _encode(pair, "JPEG"))
    # A logo instead of a portrait: rejected as no_face.
    logo = np.full((240, 240, 3), 245, np.uint8)
    logo[60:180, 60:180] = (200, 40, 40)
    put("cust_0006.png", _encode(logo, "PNG"))
    return folder


def verification_pair(sample_dir: Path) -> tuple[Path, Path]:
    """(photo, video) for the demo's verification: a photo of Obama and the first sample video that shows him."""
    labels = json.loads((sample_dir / "labels.json").read_text())
    for file, video in sorted(labels["videos"].items()):
        if "obama" in video["persons"]:
            # The photo is copied beside the sample, so it lies under the local media roots like the videos.
            photo = sample_dir / "verify" / "obama2.jpg"
            if not photo.exists():
                photo.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ASSETS_DIR / "obama" / "obama2.jpg", photo)
            return photo, sample_dir / file
    raise LookupError("no sample video shows obama")


def run_identity(settings: Settings, window: Window, sample_dir: Path) -> dict[str, Any]:
    """Enrol the customer base, match it, and verify one photo against one video (in-process stages)."""
    from adpipeline.stages import gallery, verify
    from adpipeline.stages.context import StageContext

    photo, video = verification_pair(sample_dir)
    with StageContext(settings, window, run_id="demo") as ctx:
        enrolled = gallery.enrol(ctx)
        matched = gallery.match(ctx)
        verification = verify.verify_urls(ctx, str(photo), str(video))
    return {"enrol": enrolled, "match": matched, "verification": verification}


def print_identity_summary(settings: Settings, console: Console) -> None:
    """Gallery statuses, customers found in videos, and the latest verification."""
    from adpipeline.console_tables import FitTable
    from adpipeline.warehouse import get_warehouse

    with get_warehouse(settings) as wh:
        if not wh.table_exists("gallery_photos"):
            console.print("no gallery enrolled (set ADP_GALLERY_URL)")
            return
        photos = wh.query(
            "SELECT status, COALESCE(reason, '') AS reason, COUNT(*) AS n FROM {{ gallery_photos }} "
            "GROUP BY status, reason ORDER BY status, reason"
        )
        found = wh.query(
            "SELECT a.customer_id, COUNT(DISTINCT a.creative_id) AS videos, MIN(a.first_time_s) AS first_s, "
            "MAX(a.confidence_pct) AS best_confidence_pct FROM {{ customer_appearances }} AS a "
            "GROUP BY a.customer_id ORDER BY a.customer_id"
        )
        customers = wh.query("SELECT customer_id FROM {{ gallery }} ORDER BY customer_id")
        checks = (
            wh.query("SELECT * FROM {{ face_verifications }} ORDER BY verified_at DESC LIMIT 1")
            if wh.table_exists("face_verifications")
            else None
        )
    console.print(
        "gallery photos: "
        + ", ".join(f"{r.status}{' (' + r.reason + ')' if r.reason else ''}: {r.n}" for r in photos.itertuples())
    )
    rows = []
    seen = set()
    for r in found.itertuples():
        seen.add(r.customer_id)
        name = NAMES.get(r.customer_id, "")
        rows.append(
            [f"{r.customer_id} {name}".strip(), str(r.videos), f"{r.first_s:.1f}", f"{r.best_confidence_pct:.1f}"]
        )
    for customer in customers["customer_id"]:
        if customer not in seen:
            rows.append([f"{customer} {NAMES.get(customer, '')}".strip(), "0", "-", "-"])
    columns = ("customer", "videos", "first seen (s)", "best confidence %")
    console.print(FitTable("customers found in ad videos", columns, rows))
    if checks is not None and not checks.empty:
        v = checks.iloc[0]
        confidence = (
            "-"
            if v["confidence_pct"] is None or v["confidence_pct"] != v["confidence_pct"]
            else f"{v['confidence_pct']:.1f} %"
        )
        console.print(
            f"verification: {Path(str(v['image_url'])).name} in {Path(str(v['video_url'])).name}: "
            f"{v['status']}, matched={bool(v['matched'])}, confidence {confidence}, "
            f"best frame {v['best_frame_time_s']} s, {int(v['frames_checked'])} frames checked"
        )
