"""Parts of bench_face_identity.py: a stronger detector where HOG finds nothing, and identify's speed on 720p.

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

from adpipeline.faces.engine import dlib_model_dir, get_engine
from adpipeline.settings import Settings


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
