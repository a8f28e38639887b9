"""Creative fatigue and adjusted feature effects at scale, on DuckDB.

python bench/bench_fatigue.py                      # 1,000,000 creatives x 30 days live (30,000,000 ad rows)
python bench/bench_fatigue.py --creatives 100000   # a smaller run

Fills ``ads_enriched`` with SQL (range()): hex creative ids, every tenth unit a duplicate group of two creatives,
five campaigns (two strong), staggered starts over two weeks, half the creatives decaying, a real promotion effect and
a colour that rides on the strong campaigns. Then times, in one run:

- ``creative_fatigue`` rebuilt by its SQL (``adp_final``'s step), against the naive way (daily rows into pandas and
  ``numpy.polyfit`` per creative) timed on a sample of creatives and scaled up linearly;
- ``feature_effects`` (the cells aggregated in the warehouse, the GLM in statsmodels): seconds and peak memory of the
  Python side (tracemalloc, which counts numpy's buffers) and of the whole process (max RSS, DuckDB included);
- the Fatigue tab (``GET /fatigue``, first page and a later one) through the app, cold and warm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from adpipeline.settings import Settings  # noqa: E402
from adpipeline.stages.final import (  # noqa: E402
    rebuild_creative_fatigue,
    rebuild_feature_effects,
    rebuild_feature_performance,
)
from adpipeline.warehouse.duckdb import DuckDBWarehouse  # noqa: E402

START = dt.date(2026, 9, 7)


def fill(wh: DuckDBWarehouse, n: int, days: int) -> None:
    wh.ensure_tables(["ads_enriched"])
    with wh.session() as con:
        con.execute(f"""
            CREATE TEMP TABLE units AS
            SELECT i, md5('u' || i)[1:32] AS unit_id,
                   ['retargeting', 'loyalty', 'prospecting', 'awareness', 'new_arrivals'][1 + (hash(i, 1) % 5)::BIGINT]
                     AS campaign,
                   (hash(i, 2) % 1000) / 1000.0 AS r_decay,
                   (hash(i, 3) % 1000) / 1000.0 AS r_promo,
                   (hash(i, 4) % 1000) / 1000.0 AS r_teal,
                   (hash(i, 5) % 14)::INT AS offset_days,
                   exp(ln(3000) + 0.8 * ((hash(i, 6) % 1000) / 1000.0 - 0.5) * 3.4) AS level
            FROM range({n}) t(i)""")
        con.execute(f"""
            INSERT INTO ads_enriched (ad_id, date, campaign, media_type, creative_id, canonical_creative_id,
                                      impressions, clicks, spend, conversions, cta_kind, has_text, aspect_label,
                                      promotions, dominant_colors, brands, face_ids, n_faces, customer_ids, n_customers)
            WITH d AS (
              SELECT u.*, t.d,
                     CASE WHEN u.i % 10 = 0 AND t.d % 2 = 1 THEN md5('dup' || u.i)[1:32] ELSE u.unit_id END AS cid,
                     campaign IN ('retargeting', 'loyalty') AS strong,
                     CASE WHEN campaign IN ('retargeting', 'loyalty') THEN r_teal < 0.7 ELSE r_teal < 0.1 END AS teal,
                     r_promo < 0.4 AS promo,
                     CASE WHEN r_decay < 0.5 THEN -0.015 - 0.045 * r_decay * 2 ELSE 0 END AS decay,
                     greatest(1, (level * (0.8 + 0.4 * (hash(u.i, t.d, 7) % 1000) / 1000.0)))::BIGINT AS n
              FROM units u, range({days}) t(d)
            )
            SELECT 'ad_' || cid, DATE '{START.isoformat()}' + (offset_days + d)::INT, campaign,
                   CASE WHEN i % 20 = 0 THEN 'video' ELSE 'image' END, cid, unit_id,
                   n,
                   -- clicks: expected count plus a normal approximation of binomial noise (two uniforms)
                   greatest(0, round(n * p + sqrt(n * p)
                                     * sqrt(-2 * ln(greatest(1e-9, (hash(i, d, 8) % 100000) / 100000.0)))
                                     * cos(2 * pi() * (hash(i, d, 9) % 100000) / 100000.0)))::BIGINT,
                   n * 0.008, 0, ['shop_now', 'learn_more', 'sign_up'][1 + (i % 3)::BIGINT], i % 3 != 0,
                   ['1:1', '4:5', '9:16'][1 + (i % 3)::BIGINT],
                   CASE WHEN promo THEN ['discount'] ELSE [] END,
                   CASE WHEN teal THEN ['teal', 'white'] ELSE ['white'] END,
                   [], [], 0, [], 0
            FROM (SELECT *, 0.012 * CASE WHEN promo THEN 1.3 ELSE 1 END * CASE WHEN strong THEN 1.6 ELSE 1 END
                            * exp(decay * d) AS p FROM d)""")


def naive_fatigue(wh: DuckDBWarehouse, sample: int) -> float:
    """Seconds for the naive way on ``sample`` creatives: daily rows into pandas, numpy.polyfit per creative."""
    t0 = time.perf_counter()
    frame = wh.query(
        "SELECT COALESCE(canonical_creative_id, creative_id) AS unit_id, date, SUM(impressions) AS n, "
        "SUM(clicks) AS k FROM {{ ads_enriched }} WHERE COALESCE(canonical_creative_id, creative_id) IN "
        f"(SELECT DISTINCT canonical_creative_id FROM {{{{ ads_enriched }}}} ORDER BY 1 LIMIT {sample}) GROUP BY 1, 2"
    )
    for _, group in frame.groupby("unit_id"):
        t = (group["date"] - group["date"].min()).dt.days.to_numpy(float)
        y = np.log((group["k"].to_numpy(float) + 0.5) / (group["n"].to_numpy(float) + 1))
        np.polyfit(t, y, 1, w=np.sqrt(group["n"].to_numpy(float)))
    return time.perf_counter() - t0


def page_times(path: Path, repeat: int = 3) -> list[tuple[str, float]]:
    from fastapi.testclient import TestClient

    from adpipeline.insights.app import create_app

    app = create_app(
        read_dependency=lambda: None,
        run_dependency=lambda: None,
        settings=Settings(home=path.parent),
        warehouse_factory=lambda: DuckDBWarehouse(path),
    )
    client = TestClient(app)
    out = []
    for url in ("/fatigue", "/fatigue?page=2000", "/fatigue?only_fatigued=true", "/features?feature=color"):
        for n in range(repeat):
            t0 = time.perf_counter()
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            out.append((f"{url} ({'cold' if n == 0 else 'warm'})", time.perf_counter() - t0))
    return out


def cpu_s() -> float:
    """CPU seconds of this process, DuckDB's threads included (less sensitive than wall time to other jobs)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creatives", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--naive-sample", type=int, default=20_000)
    parser.add_argument("--max-cells", type=int, default=Settings().effects_max_cells)
    parser.add_argument("--keep", type=Path, help="Write the warehouse here and keep it (else a temporary folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "bench.duckdb"
        path.unlink(missing_ok=True)
        wh = DuckDBWarehouse(path)
        t0 = time.perf_counter()
        fill(wh, args.creatives, args.days)
        rows = int(wh.query("SELECT COUNT(*) AS n FROM {{ ads_enriched }}").iloc[0]["n"])
        print(f"filled ads_enriched: {rows:,} rows, {args.creatives:,} creatives in {time.perf_counter() - t0:.1f} s")
        with wh.session() as con:
            threads = con.execute("SELECT current_setting('threads')").fetchone()
        print(f"DuckDB threads: {threads[0] if threads else '?'} (shared 2-core machine, other jobs running)")

        t0, c0 = time.perf_counter(), cpu_s()
        rebuild_creative_fatigue(wh, 0.2, 5000)
        fatigue_s, fatigue_cpu = time.perf_counter() - t0, cpu_s() - c0
        summary = wh.query(
            "SELECT COUNT(*) AS n, COUNTIF(fatigued) AS f, COUNTIF(decay IS NOT NULL) AS fitted "
            "FROM {{ creative_fatigue }}"
        ).iloc[0]
        print(
            f"creative_fatigue (SQL): {fatigue_s:.1f} s wall, {fatigue_cpu:.1f} CPU s, for {int(summary['n']):,} units "
            f"({int(summary['fitted']):,} fitted, {int(summary['f']):,} fatigued)"
        )
        c0 = cpu_s()
        naive_s = naive_fatigue(wh, args.naive_sample)
        naive_cpu = (cpu_s() - c0) * args.creatives / args.naive_sample
        naive_total = naive_s * args.creatives / args.naive_sample
        print(
            f"naive (pandas + numpy.polyfit per creative): {naive_s:.1f} s for {args.naive_sample:,} creatives, "
            f"about {naive_total:.0f} s wall, {naive_cpu:.0f} CPU s for all (scaled); "
            f"SQL is {naive_total / fatigue_s:.1f}x "
            f"faster in wall time, {naive_cpu / fatigue_cpu:.1f}x in CPU "
            "(and the naive fit has no pooling, calendar or intervals)"
        )

        t0 = time.perf_counter()
        rebuild_feature_performance(wh, 1000)
        print(f"feature_performance (for the unadjusted lift): {time.perf_counter() - t0:.1f} s")
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        tracemalloc.start()
        t0, c0 = time.perf_counter(), cpu_s()
        rebuild_feature_effects(wh, min_impressions=1000, max_cells=args.max_cells, max_values=40)
        effects_s, effects_cpu = time.perf_counter() - t0, cpu_s() - c0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        effects = wh.read_table("feature_effects", "feature, value")
        first = effects.iloc[0] if len(effects) else None
        print(
            f"feature_effects: {effects_s:.1f} s wall, {effects_cpu:.1f} CPU s, "
            f"Python peak {peak / 2**30:.2f} GiB (tracemalloc), process max RSS "
            f"{rss1:.2f} GiB (before: {rss0:.2f} GiB); "
            + (
                f"{int(first['model_cells']):,} cells of {int(first['model_creatives']):,} creatives, "
                f"{int(first['model_terms'])} terms"
                if first is not None
                else "no rows"
            )
        )
        for r in effects.itertuples():
            if r.value in ("discount", "teal"):
                print(
                    f"  {r.feature}={r.value}: adjusted OR {r.odds_ratio:.3f} ({r.odds_ratio_low:.3f}-"
                    f"{r.odds_ratio_high:.3f}) {r.adjusted_flag or '-'}; unadjusted lift {r.unadjusted_lift:+.3f} "
                    f"{r.unadjusted_flag or '-'}; disagreement {r.disagreement or '-'}"
                )
        for label, seconds in page_times(path):
            print(f"page {label}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
