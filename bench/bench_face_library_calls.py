"""Per-frame cost of the faces code that became library calls (issue 24): old implementation vs new, in one run.

    .venv/bin/python bench/bench_face_library_calls.py [--old-rev d6c41a3] [--repeats 2000]

The old functions are read from git at ``--old-rev`` (the tracker's exhaustive assignment, InsightFace's numpy NMS
and Umeyama alignment); the new ones are the current code (scipy's ``linear_sum_assignment``, ``cv2.dnn.NMSBoxes``,
``cv2.estimateAffinePartial2D``). Also timed in the same run: importing scipy.optimize in a fresh process (paid once
per process, at the first frame with open tracks and detections) and one BlazeFace detection of a 1280x720 frame, the
per-frame work these calls sit beside. Times on a shared machine: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _old_module(rev: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True)
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / path)
    sys.modules[name] = module
    exec(compile(source.stdout, f"{rev}:{path}", "exec"), module.__dict__)
    return module


def _per_call_us(fn, args_list: list[tuple], repeats: int) -> float:
    start = time.perf_counter()
    for i in range(repeats):
        fn(*args_list[i % len(args_list)])
    return (time.perf_counter() - start) / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-rev", default="d6c41a3")
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()

    from scipy.optimize import linear_sum_assignment

    from adpipeline.faces import engine as new_engine

    old_tracking = _old_module(args.old_rev, "adpipeline/faces/tracking.py", "old_tracking")
    old_engine = _old_module(args.old_rev, "adpipeline/faces/engine.py", "old_engine")
    rng = np.random.default_rng(0)
    out: dict[str, object] = {"old_rev": args.old_rev, "load": os.getloadavg()[0]}

    # the tracker: one cost matrix per sampled frame, open tracks x detections (1-3 faces usual, 4x6 the old limit)
    for rows, cols in ((1, 1), (2, 2), (3, 3), (2, 3), (4, 6)):
        mats = [rng.random((rows, cols)) for _ in range(50)]
        old_us = _per_call_us(old_tracking._assign, [(m,) for m in mats], args.repeats)
        new_us = _per_call_us(linear_sum_assignment, [(m,) for m in mats], args.repeats)
        out[f"assign_{rows}x{cols}_us"] = {
            "old": round(old_us, 1),
            "new": round(new_us, 1),
            "new/old": round(new_us / old_us, 2),
        }

    # InsightFace per frame: NMS over the candidate boxes (tens), then one alignment per face
    cases = []
    for _ in range(50):
        n = int(rng.integers(5, 60))
        corner = rng.uniform(0, 600, (n, 2))
        boxes = np.c_[corner, corner + rng.uniform(20, 150, (n, 2))].astype(np.float32)
        cases.append((boxes, rng.uniform(0.25, 1, n).astype(np.float32), 0.4))
    old_us = _per_call_us(old_engine._nms, cases, args.repeats)
    new_us = _per_call_us(new_engine._nms, cases, args.repeats)
    out["nms_5_60_boxes_us"] = {"old": round(old_us, 1), "new": round(new_us, 1), "new/old": round(new_us / old_us, 2)}
    dst = new_engine._ARCFACE_DST
    points = [((dst * rng.uniform(0.5, 3) + rng.uniform(0, 900, 2)).astype(np.float32), dst) for _ in range(50)]
    old_us = _per_call_us(old_engine._similarity_transform, points, args.repeats)
    new_us = _per_call_us(new_engine._similarity_transform, points, args.repeats)
    out["similarity_us"] = {"old": round(old_us, 1), "new": round(new_us, 1), "new/old": round(new_us / old_us, 2)}

    # one-off per process: importing scipy.optimize (median of 3 fresh interpreters, minus a bare interpreter)
    def fresh(code: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    bare = fresh("import numpy, cv2")
    out["import_scipy_optimize_ms"] = round((fresh("import numpy, cv2, scipy.optimize") - bare) * 1e3, 1)

    # context: the per-frame work beside them (BlazeFace on a 1280x720 frame, 3 passes)
    from adpipeline.faces.blazeface import BlazeFace

    frame = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    detector = BlazeFace()
    detector.detect(frame)
    start = time.perf_counter()
    for _ in range(5):
        detector.detect(frame)
    out["blazeface_1280x720_frame_ms"] = round((time.perf_counter() - start) / 5 * 1e3, 1)
    out["load_end"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
