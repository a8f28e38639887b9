"""The identity decisions as the user gets them: `verify` (a photo against a whole video) and the gallery (a track's
mean against a template), checked and fitted on those same comparisons (issue 20, deliverable 3).

    .venv/bin/python bench/bench_face_decision.py [--videos 30] [--per-family 1] [--duration 8]

Data, per split (``tuning`` / ``heldout``, disjoint seeds of the labelled set):
- photos: the labelled set's changed photos (``bench_face_labelled.probes``, ``--per-family`` per photo and family,
  10 families, 6 photos of 4 people), embedded as `verify` embeds its photo (``photo_face``);
- videos: ``--videos`` composited 640x360 clips of ``--duration`` s (``face_synth.random_video_plan``: 1-3 augmented
  people, sometimes a cut that swaps one in place), sampled as the stage samples. Each video is detected and embedded
  once; then
  - `verify`'s tracks: ``verify._tracks_of`` over every embedded detection (exactly verify's path), and
  - the gallery's tracks: the faces stage's ``Tracker`` (``face_embeds_per_track`` embedded samples, quality-weighted
    mean), fed the same detections; its embeddings come from the same chips (looked up, not recomputed).
  A track's person is the planted person its detections overlap (``face_synth.truth_person``, majority).

Comparisons:
- verify pair = (photo, video): same person when the photo's person is planted in the video, impostor otherwise. The
  decision is verify's: the best track's distance against ``decision_threshold(1 - (1 - far)^(1/k), floor)`` (Sidak
  over the video's k tracks). Also scored: the Sidak threshold without the confidence floor (what the FAR claim alone
  gives), a single-comparison threshold (no correction), Sidak on per-track thresholds fitted on the tuning part's
  photo-vs-track impostor distances, and one threshold fitted on the tuning part's best-of-video impostor distances.
- gallery comparison = (stage track, template): templates are each person's first photo, enrolled as the bench's
  identity part does; impostor = a template of another person. Open set per track: with its own person left out of
  the gallery (a non-enrolled person), is it matched to anyone?

Honest limit: 4 people. However many pairs, the impostors come from 12 ordered identity pairs (6 unordered); the
held-out part holds out augmentation seeds, not identities. Prints one JSON object. Cached per video and per photo
split in ``$TMPDIR/adp_face_bench`` by the digest of the code that makes the data (not of this file: delete the cache
after changing ``one_video`` or ``photo_split``). Results: ``bench/results/2026-12-08-face-decision.md``.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import pickle
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "faces")]

import bench_face_labelled as labelled  # noqa: E402
import face_synth as fs  # noqa: E402

from adpipeline.faces.calibration import Calibration, _threshold_at_far, calibration_for  # noqa: E402
from adpipeline.faces.engine import get_engine  # noqa: E402
from adpipeline.faces.tracking import Tracker  # noqa: E402
from adpipeline.faces.verify import _tracks_of, _video_detections, photo_face  # noqa: E402
from adpipeline.faces.video import threshold_for  # noqa: E402
from adpipeline.settings import Settings  # noqa: E402

VIDEO_SEEDS = {"tuning": 31_000, "heldout": 97_000}


class _ChipLookup:
    """An engine stand-in for the stage's Tracker: returns the embedding already computed for the same chip."""

    def __init__(self, by_chip: dict[bytes, np.ndarray], dim: int) -> None:
        self.by_chip, self.dim = by_chip, dim
        self.looked_up = 0

    def embed_chips(self, chips: list[np.ndarray]) -> np.ndarray:
        self.looked_up += len(chips)
        return (
            np.stack([self.by_chip[hashlib.sha256(c.tobytes()).digest()] for c in chips])
            if chips
            else np.zeros((0, self.dim), np.float32)
        )


def _unit_mean(vectors: list[np.ndarray]) -> np.ndarray:
    mean = np.stack(vectors).astype(np.float64).mean(0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _person_of(plan: list[fs.Appearance], dets: list) -> str | None:
    votes = Counter(fs.truth_person(plan, d.time_s, d.video_box) for d in dets)
    return votes.most_common(1)[0][0]


def one_video(engine, settings: Settings, split: str, i: int, duration: float) -> dict[str, object]:
    """One video: planted people, verify's track means and the stage's track embeddings, each with its person."""
    threshold = threshold_for(engine, settings)
    with tempfile.TemporaryDirectory() as tmp:
        rng = random.Random(VIDEO_SEEDS[split] + i)
        plan = fs.random_video_plan(rng, duration, (640, 360))
        path = fs.write_video(
            Path(tmp) / f"{split}{i}.mp4", plan, duration, (640, 360), fps=10, seed=VIDEO_SEEDS[split] + i
        )
        per_frame, _ = _video_detections(engine, str(path), settings, {})
    verify_tracks = [
        (_person_of(plan, dets), _unit_mean([d.embedding for d in dets]))
        for dets in _tracks_of(engine, per_frame, threshold)
    ]
    by_chip = {hashlib.sha256(d.chip.tobytes()).digest(): d.embedding for frame in per_frame for d in frame}
    fresh = [[copy.copy(d) for d in frame] for frame in per_frame]
    for frame in fresh:
        for d in frame:
            d.embedding = None
    tracker = Tracker(_ChipLookup(by_chip, engine.dim), threshold, settings.face_embeds_per_track)  # type: ignore[arg-type]
    for index, frame in enumerate(fresh):
        tracker.update(index, frame)
    stage_tracks = [
        (fs.truth_person(plan, t.best_time_s, t.best_box), t.embedding.astype(np.float64))
        for t in tracker.finish(f"{split}{i}")
    ]
    return {"people": sorted({a.person for a in plan}), "verify_tracks": verify_tracks, "stage_tracks": stage_tracks}


def photo_split(engine, settings: Settings, split: str, per_family: int) -> list[tuple[str, str, np.ndarray | None]]:
    rows = []
    for probe in labelled.probes(split, per_family):
        face = photo_face(engine, probe.rgb, settings, min_size_px=settings.verify_min_face_px)
        rows.append((probe.person, probe.family, None if face is None else face.embedding.astype(np.float64)))
    return rows


def cached(name: str, make):
    source = b"".join(
        (ROOT / p).read_bytes()
        for p in (
            "bench/bench_face_labelled.py",
            "tests/faces/face_synth.py",
            "adpipeline/faces/verify.py",
            "adpipeline/faces/tracking.py",
            "adpipeline/faces/blazeface.py",
            "adpipeline/faces/engine.py",
        )
    )
    path = (
        Path(tempfile.gettempdir())
        / "adp_face_bench"
        / f"decision_{name}_{hashlib.sha256(source).hexdigest()[:10]}.pkl"
    )
    if path.is_file():
        return pickle.loads(path.read_bytes())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def verify_pairs(photos, videos) -> list[tuple[bool, float, int]]:
    """(same person, best distance over the video's tracks, number of tracks) per photo x video with a face in both."""
    pairs = []
    for person, _, vector in photos:
        if vector is None:
            continue
        for video in videos:
            tracks = video["verify_tracks"]
            if not tracks:
                continue
            best = min(float(np.linalg.norm(mean - vector)) for _, mean in tracks)
            pairs.append((person in video["people"], best, len(tracks)))
    return pairs


def upper95(errors: int, n: int) -> float:
    """One-sided 95 % upper bound of a rate (Clopper-Pearson; 3/n for no errors)."""
    if n == 0:
        return 1.0
    if errors == 0:
        return 1 - 0.05 ** (1 / n)
    from scipy.stats import beta

    return float(beta.ppf(0.95, errors + 1, n - errors))


def score_verify(pairs, rule) -> dict[str, object]:
    same = [(d, k) for s, d, k in pairs if s]
    diff = [(d, k) for s, d, k in pairs if not s]
    accepted = sum(d <= rule(k) for d, k in diff)
    return {
        "tar": round(sum(d <= rule(k) for d, k in same) / max(1, len(same)), 4),
        "far": round(accepted / max(1, len(diff)), 5),
        "false_accepts": accepted,
        "far_upper95": round(upper95(accepted, len(diff)), 4),
        "same_pairs": len(same),
        "impostor_pairs": len(diff),
    }


def gallery_rows(videos, templates: dict[str, np.ndarray]) -> list[tuple[str, dict[str, float]]]:
    """(track's person, distance to every template) for each stage track that is a planted person."""
    rows = []
    for video in videos:
        for person, vector in video["stage_tracks"]:
            if person is None:
                continue
            rows.append((person, {p: float(np.linalg.norm(vector - t)) for p, t in templates.items()}))
    return rows


def score_gallery(rows, threshold: float) -> dict[str, object]:
    impostor = [d for person, dists in rows for p, d in dists.items() if p != person]
    accepted = sum(d <= threshold for d in impostor)
    top1 = sum(min(dists, key=dists.get) == person and dists[person] <= threshold for person, dists in rows)
    non_enrolled = sum(min(d for p, d in dists.items() if p != person) <= threshold for person, dists in rows)
    return {
        "threshold": round(threshold, 4),
        "far_per_comparison": round(accepted / max(1, len(impostor)), 5),
        "false_accepts": accepted,
        "far_upper95": round(upper95(accepted, len(impostor)), 4),
        "impostor_comparisons": len(impostor),
        "tracks": len(rows),
        "top1_open_set": round(top1 / max(1, len(rows)), 4),
        "non_enrolled_tracks_matched": f"{non_enrolled}/{len(rows)}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=30, help="videos per split")
    parser.add_argument("--per-family", type=int, default=1, help="changed photos per photo and family, per split")
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    engine = get_engine(settings)
    calibration = calibration_for(engine.model_id)
    assert isinstance(calibration, Calibration), engine.model_id
    floor = settings.match_min_confidence_pct / 100
    verify_far, gallery_far = settings.verify_far, settings.gallery_far
    started = time.perf_counter()
    from bench_face_identity import gallery_templates

    templates = gallery_templates(engine, settings)
    data = {}
    for split in ("tuning", "heldout"):
        videos = [
            cached(
                f"video_{split}_{i}_{args.duration:g}",
                lambda s=split, i=i: one_video(engine, settings, s, i, args.duration),
            )
            for i in range(args.videos)
        ]
        photos = cached(
            f"photos_{split}_{args.per_family}", lambda s=split: photo_split(engine, settings, s, args.per_family)
        )
        data[split] = (videos, photos)

    # fitted on the tuning part only: the best-of-video impostor distances and the track-vs-template impostors
    tune_pairs = verify_pairs(data["tuning"][1], data["tuning"][0])
    fitted_verify = _threshold_at_far(np.array([d for s, d, _ in tune_pairs if not s]), verify_far)
    # and per track (photo x each track of a video without the person), for Sidak on a per-track fit
    tune_track_impostors = np.array(
        [
            float(np.linalg.norm(mean - vector))
            for person, _, vector in data["tuning"][1]
            if vector is not None
            for video in data["tuning"][0]
            if person not in video["people"]
            for _, mean in video["verify_tracks"]
        ]
    )
    tune_rows = gallery_rows(data["tuning"][0], templates)
    fitted_gallery = _threshold_at_far(
        np.array([d for person, dists in tune_rows for p, d in dists.items() if p != person]), gallery_far
    )

    def sidak(k: int, with_floor: bool) -> float:
        per_track = 1.0 - (1.0 - verify_far) ** (1.0 / k)
        return calibration.decision_threshold(per_track, floor) if with_floor else calibration.threshold(per_track)

    rules = {
        "shipped: Sidak + 90 % floor": lambda k: sidak(k, True),
        "Sidak, no floor": lambda k: sidak(k, False),
        "single comparison, no correction, no floor": lambda k: calibration.threshold(verify_far),
        "Sidak on a per-track fit (tuning photo-vs-track impostors), no floor": lambda k: _threshold_at_far(
            tune_track_impostors, 1.0 - (1.0 - verify_far) ** (1.0 / k)
        ),
        "fitted on tuning best-of-video impostors, no floor": lambda k: fitted_verify,
        "fitted, with the 90 % floor": lambda k: min(fitted_verify, calibration.distance_at(floor)),
    }
    out: dict[str, object] = {
        "model_id": engine.model_id,
        "verify_far": verify_far,
        "gallery_far": gallery_far,
        "floor_distance": round(calibration.distance_at(floor), 4),
        "fitted_verify_threshold": round(fitted_verify, 4),
        "fitted_gallery_threshold": round(fitted_gallery, 4),
        "tuning_photo_vs_track_impostors": len(tune_track_impostors),
        "per_track_fit_by_k": {
            k: round(_threshold_at_far(tune_track_impostors, 1.0 - (1.0 - verify_far) ** (1.0 / k)), 4)
            for k in (1, 2, 3, 4)
        },
        "shipped_sidak_no_floor_by_k": {k: round(sidak(k, False), 4) for k in (1, 2, 3, 4)},
        "identities": len(templates),
    }
    for split in ("heldout", "tuning"):
        videos, photos = data[split]
        pairs = verify_pairs(photos, videos)
        rows = gallery_rows(videos, templates)
        tracks_per_video = Counter(len(v["verify_tracks"]) for v in videos)
        impostor = sorted(d for s, d, _ in pairs if not s)
        out[split] = {
            "videos": len(videos),
            "photos_with_a_face": sum(v is not None for *_, v in photos),
            "photos": len(photos),
            "verify_tracks_per_video": dict(sorted(tracks_per_video.items())),
            "stage_tracks_not_a_planted_person": sum(p is None for v in videos for p, _ in v["stage_tracks"]),
            "verify": {name: score_verify(pairs, rule) for name, rule in rules.items()},
            "verify_nearest_impostor_distances": [round(d, 4) for d in impostor[:5]],
            "gallery": {
                "shipped: FAR threshold + 90 % floor": score_gallery(
                    rows, calibration.decision_threshold(gallery_far, floor)
                ),
                "FAR threshold, no floor": score_gallery(rows, calibration.threshold(gallery_far)),
                "fitted on tuning track-vs-template impostors": score_gallery(rows, fitted_gallery),
            },
            "gallery_nearest_impostor_distances": sorted(
                round(d, 4) for person, dists in rows for p, d in dists.items() if p != person
            )[:5],
        }
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["load_average"] = [round(v, 2) for v in os.getloadavg()]
    out["identity_pairs"] = {
        "people": len(templates),
        "ordered_impostor_identity_pairs": len(templates) * (len(templates) - 1),
        "people_for_200_distinct_unordered_pairs": math.ceil((1 + math.sqrt(1 + 8 * 200)) / 2),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
