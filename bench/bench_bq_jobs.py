"""BigQuery jobs per daily run, on the local emulator: this tree beside a baseline commit ("today's count").

Each tree runs, in its own process, the chain (``run_direct``) on a small generated sample for day 1 (first run, tables
created) and then day 2 (a steady-state daily run). Jobs are counted where every version of adpipeline makes them,
in ``google.cloud.bigquery.Client`` (``query`` and ``query_and_wait``: by statement kind; ``load_table_from_file``:
load), so both trees are measured the same way. Metadata calls (get/list/create/delete table, get dataset) are API
requests, not jobs, and are counted apart. Jobs are what BigQuery meters (jobs per day and per table quotas, slots,
a bill per query).

    python bench/bench_bq_jobs.py [--baseline-ref 0fc8d94] [--images 6] [--videos 1]

Needs the emulator venv (.venv-bq, scripts/setup_bqemulator.sh). Takes a few minutes (two chain runs per tree).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASELINE = "0fc8d94"  # main before partitioned tables / listed ensure_tables / partition replacement

CHILD = r"""
import collections, datetime as dt, json, os, re, sys, tempfile
from pathlib import Path
from google.cloud import bigquery

jobs, api = collections.Counter(), collections.Counter()
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)

def kind(sql):
    words = _COMMENT.sub(" ", sql).split()
    first = words[0].upper() if words else "?"
    if first == "CREATE":
        return "CREATE OR REPLACE" if words[1:3] and words[1].upper() == "OR" else "CREATE IF NOT EXISTS"
    return "SELECT" if first in ("SELECT", "WITH", "(") else first

depth = [0]  # query_and_wait may fall back to query: count the outer call only

def wrap(name, counter, label=None):
    original = getattr(bigquery.Client, name)
    def wrapper(self, *args, **kwargs):
        if not depth[0]:
            counter[label(args, kwargs) if label else name] += 1
        depth[0] += 1
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
    setattr(bigquery.Client, name, wrapper)

wrap("query", jobs, lambda a, k: kind(a[0] if a else k["query"]))
wrap("query_and_wait", jobs, lambda a, k: kind(a[0] if a else k["query"]))  # pandas-gbq's reads
wrap("load_table_from_file", jobs, lambda a, k: "load")
for name in ("get_table", "list_tables", "create_table", "delete_table", "get_dataset", "create_dataset"):
    wrap(name, api)

from tests.emulators.bigquery import bigquery_emulator
from adpipeline.demo.sample import generate_sample
from adpipeline.sample_load import load_ads_csv
from adpipeline.settings import Settings
from adpipeline.stages.chain import run_direct
from adpipeline.window import Window

start = dt.date(2026, 10, 1)
result = {}
with tempfile.TemporaryDirectory() as tmp, bigquery_emulator() as url:
    os.environ["BIGQUERY_EMULATOR_HOST"] = url
    sample = generate_sample(Path(tmp) / "sample", start=start, days=3, n_images=int(sys.argv[1]),
                             n_videos=int(sys.argv[2]))
    settings = Settings(_env_file=None, home=Path(tmp) / "home", warehouse_backend="bigquery",
                        bq_project="test-project", bq_dataset="bench", allow_local_paths=True,
                        local_media_roots=[sample.out_dir])
    load_ads_csv(settings, sample.raw_ads_csv)
    for label, day in (("day 1 (first run)", start), ("day 2 (daily run)", start + dt.timedelta(days=1))):
        jobs.clear(); api.clear()
        run_direct(settings, Window(day, day))
        result[label] = {"jobs": dict(jobs), "api": dict(api)}
print("RESULT " + json.dumps(result))
"""


def measure(tree: Path, images: int, videos: int) -> dict[str, dict[str, dict[str, int]]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    env.pop("BIGQUERY_EMULATOR_HOST", None)
    # The emulator venv and launcher of this checkout serve both trees.
    env["BQEMULATOR_VENV"] = str(ROOT / ".venv-bq")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(images), str(videos)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"run in {tree} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def extract(ref: str, into: Path) -> Path:
    """The tree of ``ref`` (git archive), plus this checkout's emulator launcher."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    launcher = into / "tree" / "tests" / "emulators" / "bigquery.py"
    launcher.write_text((ROOT / "tests" / "emulators" / "bigquery.py").read_text())
    return into / "tree"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-ref", default=DEFAULT_BASELINE)
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--videos", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = measure(extract(args.baseline_ref, Path(tmp)), args.images, args.videos)
    now = measure(ROOT, args.images, args.videos)
    print(f"BigQuery jobs per chain run on the emulator ({args.images} images, {args.videos} video(s) a day)")
    for label in now:
        before, after = baseline[label], now[label]
        kinds = sorted(set(before["jobs"]) | set(after["jobs"]))
        print(f"\n{label:<24} {'baseline ' + args.baseline_ref:>18} {'this tree':>10}")
        for k in kinds:
            print(f"  {k:<22} {before['jobs'].get(k, 0):>18} {after['jobs'].get(k, 0):>10}")
        total_b, total_a = sum(before["jobs"].values()), sum(after["jobs"].values())
        print(f"  {'jobs, total':<22} {total_b:>18} {total_a:>10}")
        api_b, api_a = sum(before["api"].values()), sum(after["api"].values())
        print(f"  {'metadata API calls':<22} {api_b:>18} {api_a:>10}")


if __name__ == "__main__":
    main()
