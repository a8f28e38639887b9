"""Faces bench: identity thresholds, clustering accuracy and video speed, measured on labelled synthetic material.

    .venv/bin/python bench/bench_faces.py thresholds   # same/different-person distances on augmented photos
    .venv/bin/python bench/bench_faces.py accuracy     # pairwise precision/recall + split rate on composited videos
    .venv/bin/python bench/bench_faces.py demo         # the same on adpipeline.demo.sample's videos (labels.json)
    .venv/bin/python bench/bench_faces.py speed        # 720p, 1 fps, <=3 faces, 2 workers vs the seed's way
    .venv/bin/python bench/bench_faces.py all

Options: ``--backend insightface --model-dir DIR`` to measure the InsightFace backend (files not shipped here).
Prints one JSON object per part; nothing here prints embeddings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "faces")]

import face_synth as fs  # noqa: E402

from adpipeline.faces import cluster, video  # noqa: E402
from adpipeline.faces.engine import DlibEngine, get_engine  # noqa: E402
from adpipeline.settings import Settings  # noqa: E402


def make_settings(args: argparse.Namespace, **overrides: object) -> Settings:
    values: dict[str, object] = {"face_backend": args.backend, "face_detector": getattr(args, "detector", "blazeface")}
    if args.model_dir:
        values["insightface_model_dir"] = args.model_dir
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def percentiles(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values)
    return {
        "n": int(arr.size),
        "min": round(float(arr.min()), 3),
        "p1": round(float(np.percentile(arr, 1)), 3),
        "p5": round(float(np.percentile(arr, 5)), 3),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
        "p99": round(float(np.percentile(arr, 99)), 3),
        "max": round(float(arr.max()), 3),
    }


def part_thresholds(args: argparse.Namespace) -> dict[str, object]:
    """Embed strongly augmented photos (scale 70-220 px faces) and compare same vs different person distances."""
    engine = get_engine(make_settings(args))
    rng = random.Random(args.seed)
    vectors: list[tuple[str, str, np.ndarray]] = []
    missed = 0
    import cv2

    for key in sorted(fs.FACE_BOXES):
        crop, face_frac = fs.portrait(key)
        for n in range(args.augments):
            aug = fs.Augment.random(rng, 1.0)
            img = fs.augment(crop, aug, seed=n)
            face_px = rng.randint(70, 220)
            scale = face_px / (face_frac * img.shape[1])
            img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            pad = cv2.copyMakeBorder(img, 40, 40, 40, 40, cv2.BORDER_REFLECT)
            faces = [f for f in engine.detect(pad) if f.score >= engine.default_min_score]
            if not faces:
                missed += 1
                continue
            face = max(faces, key=lambda f: f.size_px)
            vectors.append((key.split("/")[0], key, engine.embed(pad, face)))
    same, diff, same_photo, cross_photo = [], [], [], []
    for (pa, ka, va), (pb, kb, vb) in combinations(vectors, 2):
        d = float(np.linalg.norm(va - vb))
        if pa == pb:
            same.append(d)
            (same_photo if ka == kb else cross_photo).append(d)
        else:
            diff.append(d)
    result = {
        "part": "thresholds",
        "backend": engine.name,
        "model_id": engine.model_id,
        "embedded": len(vectors),
        "missed_detections": missed,
        "same_person": percentiles(same),
        "same_person_same_photo": percentiles(same_photo),
        "same_person_other_photo": percentiles(cross_photo),
        "different_person": percentiles(diff),
    }
    for thr in (0.30, 0.35, 0.40, 0.45, 0.50):
        result[f"at_{thr:.2f}"] = {
            "false_reject_same": round(float(np.mean(np.asarray(same) > thr)), 4),
            "false_accept_diff": round(float(np.mean(np.asarray(diff) <= thr)), 4),
        }
    return result


def score_clusters(truth: dict[str, str], face_of: dict[str, str]) -> dict[str, float]:
    """Pairwise precision/recall over tracks with a known person, and the share of persons split over >1 face id."""
    ids = sorted(truth)
    tp = fp = fn = 0
    for a, b in combinations(ids, 2):
        same_truth = truth[a] == truth[b]
        same_pred = face_of[a] == face_of[b]
        tp += same_truth and same_pred
        fp += same_pred and not same_truth
        fn += same_truth and not same_pred
    persons: dict[str, set[str]] = {}
    for tid in ids:
        persons.setdefault(truth[tid], set()).add(face_of[tid])
    return {
        "tracks": len(ids),
        "pairwise_precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "pairwise_recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "persons": len(persons),
        "split_persons": sum(len(f) > 1 for f in persons.values()),
        "split_rate": round(sum(len(f) > 1 for f in persons.values()) / max(1, len(persons)), 4),
        "face_ids": len(set(face_of[t] for t in ids)),
    }


def _cluster_and_score(results: list[video.VideoFaces], truth: dict[str, str], threshold: float) -> dict[str, object]:
    tracks = [
        cluster.NewTrack(t.track_id, t.creative_id, t.embedding, t.quality, (r.creative_id, t.track_id))
        for r in results
        for t in r.tracks
    ]
    one = cluster.assign_faces([], tracks, threshold)
    # the same tracks in three calls (a day-by-day backfill) must give the same ids
    known: dict[str, cluster.KnownFace] = {}
    chunks = np.array_split(np.arange(len(tracks)), 3)
    face_of: dict[str, str] = {}
    for chunk in chunks:
        step = cluster.assign_faces(list(known.values()), [tracks[i] for i in chunk], threshold)
        face_of.update(step.face_of)
        known.update({f.face_id: f for f in step.faces})
    full = cluster.recluster(tracks, threshold, previous=one.face_of)
    labelled = {tid: p for tid, p in truth.items() if p is not None}
    return {
        "incremental": score_clusters(labelled, one.face_of),
        "incremental_equals_batched": face_of == one.face_of,
        "recluster": score_clusters(labelled, full.face_of),
        "recluster_kept_ids": round(
            sum(full.face_of[t] == one.face_of[t] for t in one.face_of) / max(1, len(one.face_of)), 4
        ),
    }


def part_accuracy(args: argparse.Namespace) -> dict[str, object]:
    """Composited videos with 1-3 augmented people (and cuts that swap people in place): tracks -> unique faces."""
    settings = make_settings(args)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        items, plans = [], {}
        for i in range(args.videos):
            plan = fs.random_video_plan(rng, args.duration, (640, 360))
            path = fs.write_video(Path(tmp) / f"v{i:02d}.mp4", plan, args.duration, (640, 360), seed=i)
            items.append((f"v{i:02d}", str(path)))
            plans[f"v{i:02d}"] = plan
        t0 = time.perf_counter()
        results = video.process_videos(items, settings)
        elapsed = time.perf_counter() - t0
    truth: dict[str, str] = {}
    false_tracks = 0
    planted = 0
    found: set[tuple[str, str]] = set()
    for r in results:
        planted += len({a.person for a in plans[r.creative_id]})
        for t in r.tracks:
            person = fs.truth_person(plans[r.creative_id], t.best_time_s, t.best_box)
            if person is None:
                false_tracks += 1
            else:
                truth[t.track_id] = person
                found.add((r.creative_id, person))
    engine = get_engine(settings)
    threshold = video.threshold_for(engine, settings)
    out: dict[str, object] = {
        "part": "accuracy",
        "backend": engine.name,
        "threshold": threshold,
        "videos": len(items),
        "seconds_of_video": args.videos * args.duration,
        "wall_s": round(elapsed, 2),
        "tracks": sum(len(r.tracks) for r in results),
        "false_tracks": false_tracks,
        "person_video_pairs_found": f"{len(found)}/{planted}",
        "statuses": sorted({r.status for r in results}),
    }
    out.update(_cluster_and_score(results, truth, threshold))
    return out


def part_demo(args: argparse.Namespace) -> dict[str, object]:
    """The demo generator's videos (labels.json has persons and time ranges; tracks with one person on screen)."""
    from adpipeline.demo.sample import generate_sample

    settings = make_settings(args)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate_sample(Path(tmp), n_images=1)
        labels = json.loads(manifest.labels_path.read_text())
        items = [(Path(f).stem, str(Path(tmp) / f)) for f in sorted(labels["videos"])]
        results = video.process_videos(items, settings)
    truth: dict[str, str] = {}
    ambiguous = 0
    for r, (_file, meta) in zip(results, sorted(labels["videos"].items()), strict=True):
        for t in r.tracks:
            on = {a["person"] for a in meta["appearances"] if a["start_s"] <= t.best_time_s < a["end_s"]}
            if len(on) == 1:
                truth[t.track_id] = on.pop()
            else:
                ambiguous += 1
    engine = get_engine(settings)
    threshold = video.threshold_for(engine, settings)
    out: dict[str, object] = {
        "part": "demo",
        "videos": len(items),
        "statuses": {r.creative_id: r.status for r in results},
        "tracks": sum(len(r.tracks) for r in results),
        "tracks_scored": len(truth),
        "tracks_with_several_people_on_screen": ambiguous,
    }
    out.update(_cluster_and_score(results, truth, threshold))
    return out


def part_demo_ids(args: argparse.Namespace) -> dict[str, object]:
    """The demo's tracks and face ids with HOG (the former detector) and BlazeFace, in one run: which ids stay."""
    from adpipeline.demo.sample import generate_sample

    per: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = generate_sample(Path(tmp), n_images=1)
        labels = json.loads(manifest.labels_path.read_text())
        items = [(Path(f).stem, str(Path(tmp) / f)) for f in sorted(labels["videos"])]
        for detector in ("hog", "blazeface"):
            settings = make_settings(args, face_detector=detector)
            video._ENGINES.clear()  # noqa: SLF001 - one engine per detector in this process
            t0 = time.perf_counter()
            results = video.process_videos(items, settings)
            seconds = time.perf_counter() - t0
            tracks = [
                cluster.NewTrack(t.track_id, t.creative_id, t.embedding, t.quality, (r.creative_id, t.track_id))
                for r in results
                for t in r.tracks
            ]
            engine = get_engine(settings)
            face_of = cluster.assign_faces([], tracks, video.threshold_for(engine, settings)).face_of
            per[detector] = {"face_of": face_of, "seconds": round(seconds, 1)}
    old, new = per["hog"]["face_of"], per["blazeface"]["face_of"]  # type: ignore[assignment]
    old_ids, new_ids = set(old.values()), set(new.values())  # type: ignore[union-attr]
    return {
        "part": "demo-ids",
        "tracks": {"hog": len(old), "blazeface": len(new)},  # type: ignore[arg-type]
        "face_ids": {"hog": len(old_ids), "blazeface": len(new_ids)},
        "face_ids_kept": len(old_ids & new_ids),
        "face_ids_gone": sorted(old_ids - new_ids),
        "face_ids_new": sorted(new_ids - old_ids),
        "tracks_with_the_same_face_id": sum(new.get(t) == f for t, f in old.items()),  # type: ignore[union-attr]
        "seconds": {"hog": per["hog"]["seconds"], "blazeface": per["blazeface"]["seconds"]},
    }


def seed_way(path: str, engine: object, settings: Settings) -> tuple[int, int]:
    """The earlier prototype: read every frame, detect every 10th, embed every face found."""
    import cv2

    capture = cv2.VideoCapture(path)
    frames = faces_seen = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if frames % 10 == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            scale = min(1.0, settings.face_detect_max_side / max(rgb.shape[:2]))
            small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
            for face in engine.detect(small):  # type: ignore[attr-defined]
                if face.score >= engine.default_min_score:  # type: ignore[attr-defined]
                    engine.embed(small, face)  # type: ignore[attr-defined]
                    faces_seen += 1
        frames += 1
    capture.release()
    return frames, faces_seen


def _chunk_run(chunk: list[tuple[str, str]], settings: Settings) -> list[video.VideoFaces]:
    return video.process_videos(chunk, settings)


def _as_mapped_tasks(items: list[tuple[str, str]], settings: Settings, workers: int) -> list[video.VideoFaces]:
    """What the faces DAG does with ``workers`` worker slots: one process per chunk of videos (a mapped
    ``detect_faces`` task each), chunks running side by side; ``workers=1`` runs in this process."""
    if workers <= 1:
        return video.process_videos(items, settings)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    chunks = [items[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_chunk_run, chunks, [settings] * workers))
    order = {cid: i for i, (cid, _) in enumerate(items)}
    return sorted((r for part in parts for r in part), key=lambda r: order[r.creative_id])


def part_speed_detectors(args: argparse.Namespace) -> dict[str, object]:
    """HOG and BlazeFace on the same 720p videos (1 sample a second, one process, in turns, ``--repeats`` rounds):
    seconds of video per second of per-video time (engine loaded once, as in a worker), tracks found."""
    rng = random.Random(args.seed + 1)
    size = (1280, 720)
    per: dict[str, list[float]] = {"hog": [], "blazeface": []}
    tracks: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i in range(args.speed_videos):
            plan = fs.random_video_plan(rng, args.speed_duration, size, max_people=3)
            items.append(
                (f"s{i}", str(fs.write_video(Path(tmp) / f"s{i}.mp4", plan, args.speed_duration, size, fps=30, seed=i)))
            )
        total = args.speed_videos * args.speed_duration
        engines = {d: get_engine(make_settings(args, face_detector=d)) for d in per}
        for _ in range(args.repeats):
            for detector, engine in engines.items():
                settings = make_settings(args, face_sample_fps=1.0, face_detector=detector)
                with video._one_thread_each():  # noqa: SLF001 - one BLAS thread, as process_videos runs
                    results = [video.process_video(cid, path, settings, engine=engine) for cid, path in items]
                per[detector].append(sum(r.seconds for r in results))
                tracks[detector] = sum(len(r.tracks) for r in results)
    best = {d: min(v) for d, v in per.items()}
    return {
        "part": "speed-detectors",
        "video_s": total,
        "real_time_factor_best": {d: round(total / b, 1) for d, b in best.items()},
        "real_time_factor_median": {d: round(total / float(np.median(v)), 1) for d, v in per.items()},
        "blazeface_time_over_hog": round(best["blazeface"] / best["hog"], 2),
        "tracks": tracks,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def part_speed(args: argparse.Namespace) -> dict[str, object]:
    """Seconds of 720p video per wall second at 1 fps with up to 3 faces, ``--workers`` cores, ``--repeats`` runs.

    Each run of ours is one ``process_videos`` call from a cold start as the DAG task makes it: the caller's engine
    is dropped first and the worker processes are spawned anew, so start-up, imports and model loading are inside
    the wall time. The seed's way runs ``--seed-repeats`` times in the same invocation, for the ratio.
    """
    settings = make_settings(args, face_sample_fps=1.0)
    rng = random.Random(args.seed + 1)
    size = (1280, 720)
    ours_wall: list[float] = []
    ours_steady: list[float] = []
    seed_wall: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        items = []
        for i in range(args.speed_videos):
            plan = fs.random_video_plan(rng, args.speed_duration, size, max_people=3)
            items.append(
                (f"s{i}", str(fs.write_video(Path(tmp) / f"s{i}.mp4", plan, args.speed_duration, size, fps=30, seed=i)))
            )
        total = args.speed_videos * args.speed_duration
        for _ in range(args.repeats):
            video._ENGINES.clear()  # cold: the caller loads its engine inside the timed call too
            t0 = time.perf_counter()
            results = _as_mapped_tasks(items, settings, args.workers)
            ours_wall.append(time.perf_counter() - t0)
            # per-video time only (process start-up and engine load excluded): what a long batch converges to
            ours_steady.append(sum(r.seconds for r in results) / args.workers)
        engine = get_engine(settings)
        if isinstance(engine, DlibEngine):
            engine = DlibEngine(upsample=settings.face_detect_upsample, use_numpy_resnet=False)  # the seed used dlib's
        seed_frames = seed_faces = 0
        for _ in range(args.seed_repeats):
            t0 = time.perf_counter()
            seed_frames = seed_faces = 0
            for _, path in items:
                f, n = seed_way(path, engine, settings)
                seed_frames += f
                seed_faces += n
            seed_wall.append(time.perf_counter() - t0)

    def summary(walls: list[float]) -> dict[str, float]:
        best, median = min(walls), float(np.median(walls))
        return {
            "best_s": round(best, 2),
            "median_s": round(median, 2),
            "best_x_realtime": round(total / best, 1),
            "median_x_realtime": round(total / median, 1),
        }

    return {
        "part": "speed",
        "backend": settings.face_backend,
        "video": f"{args.speed_videos} x {args.speed_duration:.0f} s, 1280x720 30 fps H.264, gop 1 s, 1-3 faces",
        "workers": args.workers,
        "runs": {"ours": args.repeats, "seed": args.seed_repeats},
        "ours": summary(ours_wall),
        "ours_walls_s": [round(w, 2) for w in ours_wall],
        "ours_steady": summary(ours_steady),
        "ours_frames_sampled": sum(r.frames_sampled for r in results),
        "ours_embeddings": sum(r.embeddings_computed for r in results),
        "ours_tracks": sum(len(r.tracks) for r in results),
        "seed": summary(seed_wall),
        "seed_frames_read": seed_frames,
        "seed_embeddings": seed_faces,
        "speedup_best": round(min(seed_wall) / min(ours_wall), 1),
        "speedup_median": round(float(np.median(seed_wall)) / float(np.median(ours_wall)), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "part", choices=["thresholds", "accuracy", "demo", "demo-ids", "speed", "speed-detectors", "all"]
    )
    parser.add_argument("--detector", default="blazeface", choices=["blazeface", "hog"])
    parser.add_argument("--backend", default="dlib", choices=["dlib", "insightface"])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--augments", type=int, default=25)
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--speed-videos", type=int, default=4)
    parser.add_argument("--speed-duration", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5, help="speed: runs of ours (best and median reported)")
    parser.add_argument("--seed-repeats", type=int, default=1, help="speed: runs of the seed's way")
    args = parser.parse_args(argv)
    parts = ["thresholds", "accuracy", "demo", "speed"] if args.part == "all" else [args.part]
    for part in parts:
        t0 = time.perf_counter()
        result = globals()[f"part_{part.replace('-', '_')}"](args)
        result["bench_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
