"""Deterministic sample data for the demo and the tests.

``generate_sample(out_dir)`` writes::

    out_dir/
      media/images/img_NNN.{jpg,png,webp}   banners drawn from templates: originals, near-duplicates
                                            (resized, recompressed, cropped, badge or border added, re-encoded),
                                            exact byte copies, and template siblings (different creatives)
      media/videos/vid_NN.mp4               short H.264 clips (MPEG-4 Part 2 where the PyAV build lacks libx264),
                                            some with an AAC track, with public-domain face photos composited in
      raw_ads.csv                           ad_id,date,campaign,image_url,video_url,impressions,clicks,spend,conversions
      labels.json                           ground truth (see ``_labels``): image templates, variants, duplicate
                                            groups, persons per video with time ranges, the planted effects

Everything is a pure function of ``seed`` (and ``start``/``days``): a re-run writes byte-identical files, and
over an existing folder it replaces them (stale ``img_*``/``vid_*`` files of an earlier, larger run are removed).
URLs in the CSV are absolute paths of the files; keys in labels.json are paths relative to ``out_dir``, so the
labels do not depend on where the sample was written.

The metrics carry planted effects an analysis should find: videos showing Grace Hopper get about twice the CTR,
videos without a face about 0.6 times, and creatives with a discount convert about twice as often. One duplicate group
in three wears out (CTR falls about 7 % a day live: the Fatigue tab); retargeting ads get twice the CTR and the
4:5 banners mostly run there, so that format lifts unadjusted but not once the campaign is accounted for (the Features
tab, adjusted beside unadjusted). The planting leaves the images, the videos and every ad's dates as they were
(``performance.generate_ads`` says why).

The parts: ``images`` (the banner catalogue, its siblings, near-duplicates and copies), ``videos`` (clips with faces),
``performance`` (ads, metrics and the planted effects); ``banners`` and ``copies`` are the banner generator and copy
transforms this sample shares with the benches' labelled sets.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from adpipeline.demo.images import IMAGES_SUBDIR, TEMPLATES, ImageRecord, generate_images
from adpipeline.demo.performance import (
    BASE_CTR,
    BASE_CVR,
    CONFOUNDED_ASPECT,
    CONFOUNDED_SHARE,
    CSV_COLUMNS,
    CTR_RANGE,
    DISCOUNT_CTR_MULTIPLIER,
    DISCOUNT_CVR_MULTIPLIER,
    FATIGUE_DECAY_PER_DAY,
    IMPRESSIONS_RANGE,
    NO_FACE_VIDEO_CTR_MULTIPLIER,
    PERSON_CTR_MULTIPLIER,
    STRONG_CAMPAIGN,
    STRONG_CAMPAIGN_CTR_MULTIPLIER,
    Creative,
    decays,
    generate_ads,
    write_csv,
)
from adpipeline.demo.videos import (
    ASSETS_DIR,
    FACE_PHOTOS,
    VIDEO_FPS,
    VIDEO_PLANS,
    VIDEO_SIZE,
    VIDEOS_SUBDIR,
    VideoPlan,
    render_video,
    video_codec,
)

__all__ = ["ASSETS_DIR", "CSV_COLUMNS", "SampleManifest", "generate_sample", "main"]

LABELS_VERSION = 1


@dataclass(frozen=True)
class SampleManifest:
    """What ``generate_sample`` wrote."""

    out_dir: Path
    raw_ads_csv: Path
    labels_path: Path
    n_rows: int
    n_ads: int
    n_images: int
    n_videos: int
    persons: tuple[str, ...]
    start: dt.date
    end: dt.date  # inclusive: the last date in the CSV


# --- labels ------------------------------------------------------------------------------------------------------
def _labels(
    images: list[ImageRecord], videos: dict[str, tuple[VideoPlan, bool]], start: dt.date, days: int, seed: int
) -> dict[str, object]:
    groups: dict[str, list[str]] = {}
    for r in images:
        groups.setdefault(r.creative_id, []).append(r.file)
    siblings: dict[str, list[str]] = {}
    for r in images:
        if r.near_duplicate_of is None:
            siblings.setdefault(r.template_id, []).append(r.creative_id)
    _, codec_name = video_codec()
    return {
        "version": LABELS_VERSION,
        "seed": seed,
        "start": start.isoformat(),
        "end": (start + dt.timedelta(days=days - 1)).isoformat(),
        "paths": "keys and file names are relative to the sample folder; raw_ads.csv holds absolute paths",
        "images": {
            r.file: {
                "template_id": r.template_id,
                "variant_id": r.variant_id,
                "creative_id": r.creative_id,
                "near_duplicate_of": r.near_duplicate_of,
                "transform": r.transform,
                "differs_from_v1_by": list(r.differs_by),
                "width": r.width,
                "height": r.height,
                "product": r.product,
                "product_colour": r.product_colour,
                "headline": r.headline,
                "price": r.price,
                "cta": r.cta,
                "discount_pct": r.discount,
            }
            for r in images
        },
        # Files a person would call the same creative (only groups of two or more; every other image is alone).
        "duplicate_groups": sorted(sorted(g) for g in groups.values() if len(g) > 1),
        # Creatives drawn from one template: near-identical to a hash, yet different creatives.
        "template_siblings": {tid: sorted(ids) for tid, ids in sorted(siblings.items())},
        "videos": {
            file: {
                "duration_s": plan.duration_s,
                "fps": VIDEO_FPS,
                "width": VIDEO_SIZE[0],
                "height": VIDEO_SIZE[1],
                "codec": codec_name,
                "has_audio": plan.audio,
                "headline": plan.headline,
                "product": plan.product,
                "discount_pct": plan.discount,
                "persons": sorted({FACE_PHOTOS[a.photo].person for a in plan.cast}),
                "appearances": [
                    {
                        "person": FACE_PHOTOS[a.photo].person,
                        "photo": a.photo,
                        "start_s": float(a.start_s),
                        "end_s": float(a.end_s),
                        "start_frame": int(a.start_s * VIDEO_FPS),
                        "end_frame": int(a.end_s * VIDEO_FPS),  # exclusive
                        "slot": a.slot,
                    }
                    for a in plan.cast
                ],
            }
            for file, (plan, _) in sorted(videos.items())
        },
        "persons": sorted({p.person for p in FACE_PHOTOS.values()}),
        "effects": {
            "description": (
                "CTR = base_ctr[kind] x discount_ctr_multiplier (if discounted) x, for videos, the largest person "
                "multiplier of the persons shown (no_face_video_ctr_multiplier when none); CVR = base_cvr x "
                "discount_cvr_multiplier (if discounted); lognormal noise per ad and per day; CTR clipped"
            ),
            "base_ctr": BASE_CTR,
            "base_cvr": BASE_CVR,
            "person_ctr_multiplier": PERSON_CTR_MULTIPLIER,
            "no_face_video_ctr_multiplier": NO_FACE_VIDEO_CTR_MULTIPLIER,
            "discount_ctr_multiplier": DISCOUNT_CTR_MULTIPLIER,
            "discount_cvr_multiplier": DISCOUNT_CVR_MULTIPLIER,
            "ctr_range": list(CTR_RANGE),
            "impressions_range": list(IMPRESSIONS_RANGE),
            "favoured_person": max(PERSON_CTR_MULTIPLIER, key=PERSON_CTR_MULTIPLIER.__getitem__),
            "fatigue": {
                "description": "CTR x exp(decay_per_day x days since the group was first served) for the creatives "
                "of these duplicate groups (an image's creative_id in these labels, a video's file); the rest keep "
                "their CTR",
                "decay_per_day": FATIGUE_DECAY_PER_DAY,
                "decaying_groups": sorted(
                    {r.creative_id for r in images if decays(r.creative_id)} | {f for f in videos if decays(f)}
                ),
            },
            "confounder": {
                "description": "ads in the strong campaign get its CTR multiplier; ads of images of this aspect "
                "ratio are put there mostly (share), though the aspect ratio itself has no effect",
                "strong_campaign": STRONG_CAMPAIGN,
                "strong_campaign_ctr_multiplier": STRONG_CAMPAIGN_CTR_MULTIPLIER,
                "aspect": CONFOUNDED_ASPECT,
                "share": CONFOUNDED_SHARE,
                "templates": sorted(t.template_id for t in TEMPLATES if _confounded(t.template_id)),
            },
        },
    }


def _confounded(template_id: str) -> bool:
    """Whether a template's banners carry the confounded feature (its size in the pipeline's aspect ratio names)."""
    from adpipeline.media.images import aspect_label_of

    size = next(t.size for t in TEMPLATES if t.template_id == template_id)
    return aspect_label_of(*size) == CONFOUNDED_ASPECT


# --- entry points ------------------------------------------------------------------------------------------------
_OWNED = re.compile(r"^(img_\d+\.(jpg|png|webp)|vid_\d+\.mp4|vid_\d+\.tmp\.mp4)$")


def _remove_stale(folder: Path, keep: set[str]) -> None:
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.is_file() and _OWNED.match(p.name) and p.name not in keep:
            p.unlink()


def generate_sample(
    out_dir: Path,
    *,
    start: dt.date = dt.date(2026, 10, 1),
    days: int = 14,
    seed: int = 7,
    n_images: int | None = None,
    n_videos: int | None = None,
) -> SampleManifest:
    """Write the sample (images, videos, raw_ads.csv, labels.json) into ``out_dir``; deterministic for a seed.

    ``n_images``/``n_videos`` keep only the first creatives of the plan (for fast tests); the defaults write
    all of them (78 images, 14 videos).
    """
    if days < 3:
        raise ValueError("days must be at least 3")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = generate_images(out_dir, seed, n_images)

    plans = VIDEO_PLANS if n_videos is None else VIDEO_PLANS[:n_videos]
    videos: dict[str, tuple[VideoPlan, bool]] = {}
    for i, plan in enumerate(plans):
        file = f"{VIDEOS_SUBDIR.as_posix()}/vid_{i + 1:02d}.mp4"
        render_video(out_dir / file, plan, seed, i)
        videos[file] = (plan, plan.audio)
    _remove_stale(out_dir / IMAGES_SUBDIR, {Path(r.file).name for r in images})
    _remove_stale(out_dir / VIDEOS_SUBDIR, {Path(f).name for f in videos})

    creatives = [
        Creative(r.file, "image", bool(r.discount), (), r.creative_id, _confounded(r.template_id)) for r in images
    ]
    creatives += [
        Creative(f, "video", bool(p.discount), tuple(sorted({FACE_PHOTOS[a.photo].person for a in p.cast})), f)
        for f, (p, _) in videos.items()
    ]
    rows, n_ads = generate_ads(out_dir, creatives, start, days, seed)
    csv_path = out_dir / "raw_ads.csv"
    write_csv(csv_path, rows)
    labels_path = out_dir / "labels.json"
    labels = _labels(images, videos, start, days, seed)
    labels_path.write_text(json.dumps(labels, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    persons = tuple(sorted({p for c in creatives for p in c.persons}))
    return SampleManifest(
        out_dir=out_dir,
        raw_ads_csv=csv_path,
        labels_path=labels_path,
        n_rows=len(rows),
        n_ads=n_ads,
        n_images=len(images),
        n_videos=len(videos),
        persons=persons,
        start=start,
        end=start + dt.timedelta(days=days - 1),
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m adpipeline.demo.sample OUT_DIR [--seed N] [--start YYYY-MM-DD] [--days N]``"""
    parser = argparse.ArgumentParser(prog="python -m adpipeline.demo.sample", description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 10, 1))
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    m = generate_sample(args.out_dir, start=args.start, days=args.days, seed=args.seed)
    print(
        f"wrote {m.n_images} images, {m.n_videos} videos, {m.n_rows} rows ({m.n_ads} ads, {m.start}..{m.end}), "
        f"persons {', '.join(m.persons)} to {m.out_dir} in {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
