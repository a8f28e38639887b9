"""Insights page at scale: every page's queries on a DuckDB warehouse with 1,000,000 creatives.

python bench/bench_insights.py                    # 1,000,000 creatives, 3 ad-days each, 1,000,000 model calls
python bench/bench_insights.py --creatives 100000 # a smaller run

Tables are filled with SQL (range()), shaped by the row models; the page's own reader runs the queries, timed cold
(fresh connection) and warm. The naive way for comparison: pulling the whole duplicate_groups table into pandas to
page it, as a page without paged SQL would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adpipeline.insights.queries import InsightsReader  # noqa: E402
from adpipeline.stages.final import rebuild_feature_performance  # noqa: E402
from adpipeline.warehouse.duckdb import DuckDBWarehouse  # noqa: E402


def fill(wh: DuckDBWarehouse, n: int, days: int) -> None:
    wh.ensure_tables()
    con = wh.con
    con.execute(f"""
        INSERT INTO creatives (creative_id, url, media_type, first_seen_date, last_seen_date)
        SELECT 'c' || i, 'https://ads.example/' || i, CASE WHEN i % 20 = 0 THEN 'video' ELSE 'image' END,
               DATE '2026-10-01', DATE '2026-10-01' + {days - 1}::INT
        FROM range({n}) t(i)""")
    con.execute(f"""
        INSERT INTO image_hashes (creative_id, sha256, dhash, dhash_hex, width, height, aspect_ratio, orientation)
        SELECT 'c' || i, lpad(to_hex(i), 64, '0'), i, lpad(to_hex(i), 16, '0'), 1080, 1080, 1.0, 'square'
        FROM range({n}) t(i) WHERE i % 20 != 0""")
    # every 10th creative is the canonical of a group of four (itself and the next three); the rest stand alone
    con.execute(f"""
        INSERT INTO duplicate_groups
        SELECT 'c' || i, 'g_c' || (i - i % 10), 'c' || (i - i % 10), (i % 10) * (i % 10 < 4)::INT,
               i % 10 = 0, CASE WHEN i % 10 < 4 THEN 4 ELSE 1 END
        FROM range({n}) t(i)""")
    con.execute(
        "UPDATE duplicate_groups SET group_id = 'g_' || creative_id, canonical_creative_id = creative_id, "
        "hamming_to_canonical = 0, is_canonical = true WHERE group_size = 1"
    )
    con.execute(f"""
        INSERT INTO ads_enriched (ad_id, date, media_type, creative_id, canonical_creative_id, impressions, clicks,
                                  spend, conversions, cta_kind, has_text, people_count, visual_style, aspect_label,
                                  promotions, dominant_colors, brands, face_ids, n_faces, customer_ids,
                                  n_customers)
        SELECT 'ad' || i, DATE '2026-10-01' + d::INT, CASE WHEN i % 20 = 0 THEN 'video' ELSE 'image' END, 'c' || i,
               'c' || CASE WHEN i % 10 < 4 THEN i - i % 10 ELSE i END,
               1000 + (hash(i, d) % 50000)::INT, ((1000 + hash(i, d) % 50000) * (0.005 + (i % 7) * 0.003))::INT,
               10.0, 1, ['shop', 'learn', 'sign_up', NULL][1 + i % 4], i % 3 != 0, i % 4, 'photo',
               ['1:1', '4:5', '9:16'][1 + i % 3], CASE WHEN i % 5 = 0 THEN ['percent_off'] ELSE [] END,
               [['red', 'white', 'blue', 'gray', 'black'][1 + i % 5]], [],
               CASE WHEN i % 20 = 0 THEN ['f' || (i % 500)] ELSE [] END, (i % 20 = 0)::INT,
               CASE WHEN i % 100 = 0 THEN ['cust' || (i % 50)] ELSE [] END, (i % 100 = 0)::INT
        FROM range({n}) t(i), range({days}) s(d)""")
    con.execute("""
        INSERT INTO face_performance (face_id, n_videos, n_ads, impressions, clicks, spend, conversions, ctr)
        SELECT 'f' || i, 100, 100, 1000000, 20000 + i, 100.0, 10, (20000 + i) / 1000000.0 FROM range(500) t(i)""")
    con.execute(f"""
        INSERT INTO genai_usage (call_id, creative_id, modality, provider, model, mode, prompt_version,
                                 input_text_tokens, input_image_tokens, input_video_tokens, input_audio_tokens,
                                 cached_tokens, output_tokens, thinking_tokens, cost_usd, attempts, status, run_id,
                                 called_at)
        SELECT 'k' || i, 'c' || i, CASE WHEN i % 20 = 0 THEN 'video' ELSE 'image' END, 'gemini',
               ['gemini-2.5-flash', 'gemini-2.5-pro'][1 + i % 2], 'online', 'v1',
               300, 258, 0, 0, 0, 200, 0, 0.0004, 1, 'ok',
               'run' || (i % 30), TIMESTAMP '2026-10-01 00:00:00' + INTERVAL (i % 30) DAY
        FROM range({n}) t(i)""")


def timed(label: str, fn, repeat: int = 2) -> None:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    size = len(result[0]) if isinstance(result, tuple) else len(result) if hasattr(result, "__len__") else 1
    print(f"{label:<58} cold {times[0] * 1000:8.0f} ms   warm {min(times[1:] or times) * 1000:8.0f} ms   rows {size}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creatives", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wh = DuckDBWarehouse(Path(tmp) / "w.duckdb")
        t0 = time.perf_counter()
        fill(wh, args.creatives, args.days)
        print(
            f"filled {args.creatives:,} creatives, {args.creatives * args.days:,} ad rows in "
            f"{time.perf_counter() - t0:.0f} s"
        )
        t0 = time.perf_counter()
        rebuild_feature_performance(wh, 1000)
        print(f"rebuild feature_performance (adp_final's extra step)          {time.perf_counter() - t0:8.2f} s")
        wh.close()
        known: set[str] = set()

        def reader() -> InsightsReader:
            return InsightsReader(DuckDBWarehouse(Path(tmp) / "w.duckdb"), known)

        start, end = dt.date(2026, 10, 2), dt.date(2026, 10, 2)
        timed("faces page 1", lambda: reader().faces(1, 25))
        timed("duplicates page 1", lambda: reader().duplicate_groups(1, 25))
        timed("duplicates page 2000", lambda: reader().duplicate_groups(2000, 25))
        timed("features overview (feature_performance)", lambda: reader().feature_overview())
        timed(
            "features: color, all dates (feature_performance)",
            lambda: reader().feature_values("color", 1, 25, None, None, 1000),
        )
        timed(
            "features: face, one day (SQL over ads_enriched)",
            lambda: reader().feature_values("face", 1, 25, start, end, 1000),
        )
        timed("spend: 30 days (genai_usage)", lambda: reader().spend(dt.date(2026, 10, 1), dt.date(2026, 10, 30)))

        def naive():
            frame = DuckDBWarehouse(Path(tmp) / "w.duckdb").read_table("duplicate_groups")
            return frame[frame.group_size > 1].sort_values(["group_size", "group_id"]).head(100)

        timed("naive: pull duplicate_groups into pandas, page there", naive)


if __name__ == "__main__":
    main()
