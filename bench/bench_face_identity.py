"""Face identity bench: calibration, verification TAR at a FAR, open-set identification, detector, identify speed.

    .venv/bin/python bench/bench_face_identity.py calibrate [--write]   # fit on the tuning part, store it
    .venv/bin/python bench/bench_face_identity.py evaluate              # TAR @ FAR 1 % / 0.1 %, top-1, false matches
    .venv/bin/python bench/bench_face_identity.py detector              # HOG vs HOG + dlib CNN fallback: recall, speed
    .venv/bin/python bench/bench_face_identity.py identify-speed        # identify CLI loop: fps vs a 720p source

The labelled set is ``bench/bench_face_labelled.py`` (changed photos of the shipped public-domain people, a tuning
and a held-out part). Prints one JSON object per part; nothing here prints embeddings. The machine is shared: speed
figures vary with its load (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "faces")]

import bench_face_labelled as labelled  # noqa: E402

from adpipeline.faces.calibration import (  # noqa: E402
    CALIBRATION_FILE,
    Calibration,
    calibration_for,
    fit_calibration,
    to_json,
)
from adpipeline.faces.engine import get_engine  # noqa: E402
from adpipeline.faces.verify import photo_face  # noqa: E402
from adpipeline.settings import Settings  # noqa: E402

CACHE_TAG: str | None = None  # --cache-tag: reuse embeddings cached under another source digest (re-fitting only)


def make_settings(args: argparse.Namespace, **overrides: object) -> Settings:
    values: dict[str, object] = {"face_backend": args.backend, "face_detector": args.detector}
    if args.model_dir:
        values["insightface_model_dir"] = args.model_dir
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def embed_split(engine, settings: Settings, split: str, per_family: int, refs_per_photo: int) -> dict[str, object]:
    """Embeddings of a split's probes (None when no face is found) and references (track means), cached in
    ``$TMPDIR/adp_face_bench`` per (model, split, sizes, labelled-set source digest)."""
    import hashlib
    import pickle
    import tempfile

    source = (
        (ROOT / "bench" / "bench_face_labelled.py").read_bytes()
        + (ROOT / "adpipeline/faces/verify.py").read_bytes()
        + (ROOT / "adpipeline/faces/blazeface.py").read_bytes()
        + (ROOT / "adpipeline/faces/engine.py").read_bytes()
    )
    tag = CACHE_TAG or hashlib.sha256(source).hexdigest()[:10]
    cache = (
        Path(tempfile.gettempdir())
        / "adp_face_bench"
        / f"{engine.model_id}_{settings.face_detector}_{split}_{per_family}_{refs_per_photo}_{tag}.pkl"
    )
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    data = _embed_split(engine, settings, split, per_family, refs_per_photo)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(data))
    return data


def _embed_split(engine, settings: Settings, split: str, per_family: int, refs_per_photo: int) -> dict[str, object]:
    probe_rows = []
    for probe in labelled.probes(split, per_family):
        face = photo_face(engine, probe.rgb, settings, min_size_px=settings.verify_min_face_px)
        probe_rows.append((probe.person, probe.photo, probe.family, None if face is None else face.embedding))
    ref_rows = []
    for person, photo, frames in labelled.references(split, refs_per_photo):
        vectors = [f.embedding for f in (photo_face(engine, img, settings, 20) for img in frames) if f is not None]
        if not vectors:
            continue
        mean = np.mean(np.stack(vectors).astype(np.float64), axis=0)
        ref_rows.append((person, photo, mean / np.linalg.norm(mean)))
    return {"probes": probe_rows, "refs": ref_rows}


def pair_distances(data: dict[str, object]) -> dict[str, list]:
    """same / different distances of probe x reference; a probe without a face gives no distance (``missed``)."""
    out: dict[str, list] = defaultdict(list)
    for person, photo, family, vector in data["probes"]:  # type: ignore[union-attr]
        for r_person, r_photo, r_vector in data["refs"]:  # type: ignore[union-attr]
            same = person == r_person
            if vector is None:
                out["missed_same" if same else "missed_diff"].append((family, photo == r_photo))
                continue
            d = float(np.linalg.norm(vector.astype(np.float64) - r_vector))
            if same:
                out["same"].append((d, family, photo == r_photo))
            else:
                out["diff"].append((d, family, person, r_person))
    return out


def verification_scores(pairs: dict[str, list], thresholds: dict[float, float]) -> dict[str, object]:
    same = np.array([d for d, _, _ in pairs["same"]])
    diff = np.array([d for d, *_ in pairs["diff"]])
    n_same = len(same) + len(pairs["missed_same"])
    n_diff = len(diff) + len(pairs["missed_diff"])
    result: dict[str, object] = {
        "same_pairs": n_same,
        "different_pairs": n_diff,
        "probe_faces_missed_pairs": len(pairs["missed_same"]),
    }
    for far, t in sorted(thresholds.items(), reverse=True):
        tar = float((same <= t).sum()) / n_same
        actual_far = float((diff <= t).sum()) / n_diff
        by_family = defaultdict(lambda: [0, 0])
        for d, family, _ in pairs["same"]:
            by_family[family][0] += d <= t
            by_family[family][1] += 1
        for family, _ in pairs["missed_same"]:
            by_family[family][1] += 1
        cross = [(d <= t) for d, _, same_photo in pairs["same"] if not same_photo]
        cross_missed = sum(1 for _, same_photo in pairs["missed_same"] if not same_photo)
        result[f"far_{far:g}"] = {
            "threshold": round(t, 4),
            "tar": round(tar, 4),
            "far_measured": round(actual_far, 5),
            "tar_other_photo_of_same_person": round(sum(cross) / max(1, len(cross) + cross_missed), 4),
            "tar_by_family": {f: round(a / n, 3) for f, (a, n) in sorted(by_family.items())},
        }
    hardest = sorted(pairs["diff"])[:5]
    result["nearest_different_pairs"] = [(round(d, 3), a, b, fam) for d, fam, a, b in hardest]
    return result


def reliability(pairs: dict[str, list], calibration: Calibration) -> dict[str, object]:
    """Calibration quality: mean confidence vs observed share of same pairs, per confidence bin (class-balanced)."""
    rows = [(calibration.confidence(d), 1.0, 0.5 / len(pairs["same"])) for d, *_ in pairs["same"]]
    rows += [(calibration.confidence(d), 0.0, 0.5 / len(pairs["diff"])) for d, *_ in pairs["diff"]]
    bins = []
    for lo, hi in ((0, 0.01), (0.01, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 0.99), (0.99, 1.01)):
        sel = [(p, y, w) for p, y, w in rows if lo <= p < hi]
        if not sel:
            continue
        weight = sum(w for _, _, w in sel)
        bins.append(
            {
                "bin": f"{lo:g}-{min(hi, 1):g}",
                "pairs": len(sel),
                "mean_confidence": round(sum(p * w for p, _, w in sel) / weight, 4),
                "observed_same": round(sum(y * w for _, y, w in sel) / weight, 4),
            }
        )
    brier = sum(w * (p - y) ** 2 for p, y, w in rows)
    return {"brier_balanced": round(brier, 5), "bins": bins}


def gallery_templates(engine, settings: Settings) -> dict[str, np.ndarray]:
    """One template per person from its first photo, enrolled as the gallery enrols (largest face, unit mean)."""
    from adpipeline.faces.verify import load_image

    templates = {}
    for person in labelled.fs.PEOPLE:
        photo = labelled.fs.photos_of(person)[0]
        rgb = load_image(labelled.fs.ASSETS / photo, settings.verify_image_max_side, settings.verify_max_image_pixels)
        face = photo_face(engine, rgb, settings)
        assert face is not None, photo
        templates[person] = face.embedding.astype(np.float64)
    return templates


def identification_scores(
    data: dict[str, object], templates: dict[str, np.ndarray], threshold: float
) -> dict[str, object]:
    """Open-set identification: top-1 (all enrolled) and the share of non-enrolled probes falsely matched
    (each person left out of the gallery in turn)."""
    people = sorted(templates)
    correct = total = false_match = total_out = 0
    failures: dict[str, int] = defaultdict(int)
    per_family = defaultdict(lambda: [0, 0])
    enrolled_photos = {labelled.fs.photos_of(p)[0] for p in people}
    cross = [0, 0]
    for person, photo, family, vector in data["probes"]:  # type: ignore[union-attr]
        total += 1
        per_family[family][1] += 1
        if photo not in enrolled_photos:
            cross[1] += 1
        if vector is None:
            failures[f"{family}:no_face"] += 1
            total_out += 1  # a missed face cannot be falsely matched
            continue
        dists = {p: float(np.linalg.norm(vector.astype(np.float64) - templates[p])) for p in people}
        best = min(dists, key=dists.get)
        if best == person and dists[best] <= threshold:
            correct += 1
            per_family[family][0] += 1
            cross[0] += photo not in enrolled_photos
        else:
            failures[f"{family}:{'unknown' if dists[best] > threshold else 'wrong_person'}"] += 1
        # the same probe against the gallery without its person
        others = {p: d for p, d in dists.items() if p != person}
        total_out += 1
        false_match += min(others.values()) <= threshold
    return {
        "threshold": round(threshold, 4),
        "probes": total,
        "top1_open_set": round(correct / total, 4),
        "top1_other_photo_than_enrolled": round(cross[0] / max(1, cross[1]), 4),
        "non_enrolled_false_match_share": round(false_match / max(1, total_out), 4),
        "top1_by_family": {f: round(a / n, 3) for f, (a, n) in sorted(per_family.items())},
        "failures": dict(sorted(failures.items())),
    }


def part_calibrate(args: argparse.Namespace) -> dict[str, object]:
    settings = make_settings(args)
    engine = get_engine(settings)
    started = time.perf_counter()
    data = embed_split(engine, settings, "tuning", args.per_family, args.refs)
    pairs = pair_distances(data)
    same = [d for d, *_ in pairs["same"]]
    diff = [d for d, *_ in pairs["diff"]]
    fitted = fit_calibration(
        engine.model_id,
        np.array(same),
        np.array(diff),
        ridge=args.ridge,
        fitted_on=f"bench_face_labelled tuning, {settings.face_detector}, ridge {args.ridge:g}: "
        f"{args.per_family}/family/photo, {args.refs} refs/photo",
    )
    if args.write:
        current = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.is_file() else {}
        current[engine.model_id] = to_json(fitted)
        CALIBRATION_FILE.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    return {
        "part": "calibrate",
        "model_id": engine.model_id,
        "written": bool(args.write),
        "calibration": to_json(fitted),
        "tuning": verification_scores(pairs, fitted.thresholds),
        "seconds": round(time.perf_counter() - started, 1),
    }


def part_evaluate(args: argparse.Namespace) -> dict[str, object]:
    settings = make_settings(args)
    engine = get_engine(settings)
    calibration = calibration_for(engine.model_id)
    if calibration is None:
        raise SystemExit(f"no calibration for {engine.model_id}: run `calibrate --write` first")
    templates = gallery_templates(engine, settings)
    out: dict[str, object] = {
        "part": "evaluate",
        "model_id": engine.model_id,
        "detector": settings.face_detector,
        "calibration": to_json(calibration),
    }
    for split in ("heldout", "tuning"):
        data = embed_split(engine, settings, split, args.per_family, args.refs)
        pairs = pair_distances(data)
        out[split] = {
            "verification": verification_scores(pairs, calibration.thresholds),
            # what the user gets: the FAR threshold tightened to the confidence floor (decision_threshold)
            "verification_with_floor": verification_scores(
                pairs, {far: calibration.decision_threshold(far, args.min_confidence) for far in calibration.thresholds}
            ),
            "reliability": reliability(pairs, calibration),
            "identification_far_1e-2": identification_scores(data, templates, calibration.threshold(0.01)),
            "identification_far_1e-3": identification_scores(data, templates, calibration.threshold(0.001)),
            "identification_far_1e-3_with_floor": identification_scores(
                data, templates, calibration.decision_threshold(0.001, args.min_confidence)
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["calibrate", "evaluate", "detector", "identify-speed"])
    parser.add_argument("--backend", default="dlib")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--detector", default="blazeface", choices=["blazeface", "hog"], help="dlib backend's detector")
    parser.add_argument("--per-family", type=int, default=6, help="changed versions per photo and family")
    parser.add_argument("--refs", type=int, default=4, help="reference tracks per photo")
    parser.add_argument("--ridge", type=float, default=1e-6, help="calibrate: the logistic fit's ridge")
    parser.add_argument("--min-confidence", type=float, default=0.9, help="the confidence floor (0..1)")
    parser.add_argument("--write", action="store_true", help="calibrate: store the fit in calibration.json")
    parser.add_argument("--seconds", type=float, default=20.0, help="identify-speed: source length")
    parser.add_argument("--cache-tag", default=None, help="reuse cached embeddings with this tag (re-fit only)")
    args = parser.parse_args()
    global CACHE_TAG
    CACHE_TAG = args.cache_tag
    parts = {"calibrate": part_calibrate, "evaluate": part_evaluate}
    if args.part == "detector":
        from bench_face_detector import part_detector

        parts["detector"] = part_detector
    if args.part == "identify-speed":
        from bench_face_detector import part_identify_speed

        parts["identify-speed"] = part_identify_speed
    result = parts[args.part](args)
    result["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
