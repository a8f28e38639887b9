"""Model-call bench: rate-limited throughput against the local Gemini stub, and what dedupe + cache + batch save.

python bench/bench_genai.py throughput          # 1,000 images, 1.5 s latency, 300 requests/min (about 3.5 min)
python bench/bench_genai.py throughput --n 200 --rpm 600 --latency 1.0
python bench/bench_genai.py cost                # the sample data: the naive way vs ours, USD by the price table

throughput: the real google-genai SDK through the runner (rate limiter, concurrency, validation, ledger) against
``adpipeline.testing.GeminiStub`` with a fixed latency per answer. The floor is ``n / rpm`` minutes; the runner should
land within 20% above it. The sequential way (one call after another, no limiter) runs on ``--sequential-n`` items
in the same run and is scaled to ``n``.

cost: generates the demo sample, runs the import and media stages, and prices the feature calls with the packaged
price table and Gemini's token arithmetic (258 tokens per 768 px tile, 263 + 32 tokens per video second, the prompt,
700 output tokens): the naive way calls the model for every ad row's URL online; ours calls once per canonical
image (dedupe) and per video, never again for bytes already answered (cache), and in Batch mode at half price.
"""

from __future__ import annotations

import argparse
import bisect
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _png(n: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (320, 240), (n * 37 % 255, n * 91 % 255, 120))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def throughput(n: int, rpm: float, latency: float, concurrency: int, sequential_n: int, model: str) -> None:
    from adpipeline.features.budget import Budget
    from adpipeline.features.gemini import GeminiProvider
    from adpipeline.features.llm import MediaItem, RateLimiter, Runner
    from adpipeline.features.pricing import load_prices
    from adpipeline.settings import Settings
    from adpipeline.testing import GeminiStub

    items = [
        MediaItem(
            creative_id=f"img_{i}",
            modality="image",
            sha256=f"{i:064x}",
            mime_type="image/png",
            data=_png(i),
            size_bytes=0,
            width=320,
            height=240,
        )
        for i in range(n)
    ]
    with GeminiStub(latency_s=latency) as stub:
        settings = Settings(
            _env_file=None,
            feature_provider="gemini",
            gemini_base_url=stub.url,
            gemini_api_version="v1beta",
            gemini_model=model,
        )

        def runner(limit_rpm: float, workers: int) -> Runner:
            return Runner(
                provider=GeminiProvider(settings),
                prices=load_prices(),
                run_id="bench",
                limiter=RateLimiter(limit_rpm),
                budget=Budget(1e9),
                concurrency=workers,
            )

        started = time.perf_counter()
        outcomes = runner(rpm, concurrency).run(items)
        took = time.perf_counter() - started
        ok = sum(o.row.status == "ok" for o in outcomes)
        floor = n / rpm * 60
        seq_items = items[:sequential_n]
        started = time.perf_counter()
        runner(1e9, 1).run(seq_items)
        seq = (time.perf_counter() - started) * n / max(len(seq_items), 1)
    sent = sorted(r.received_at for r in stub.requests if r.endpoint == "generate")[:n]
    window = sent[-1] - sent[0] if len(sent) > 1 else 0.0
    busiest = max(bisect.bisect_left(sent, t + 60.0) - i for i, t in enumerate(sent)) if sent else 0
    print(f"{n} images, stub latency {latency} s, limit {rpm:.0f} requests/min, {concurrency} in flight")
    print(
        f"  rate-limited runner : {took:7.1f} s wall ({ok}/{n} ok); floor {floor:.1f} s -> {took / floor:.2f}x floor;"
        f" observed rate {60 * (n - 1) / window if window else 0:.0f}/min"
    )
    print(f"  sequential          : {seq:7.1f} s (measured on {len(seq_items)}, scaled to {n})")
    print(f"  speed-up            : {seq / took:.1f}x; most requests in any 60 s: {busiest} (limit {rpm:.0f})")


def cost(model: str, days: int) -> None:
    import pandas as pd

    from adpipeline.demo.sample import generate_sample
    from adpipeline.features import pricing, schema
    from adpipeline.features.pricing import load_prices
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.settings import Settings
    from adpipeline.stages import ingest, media
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    prices = load_prices()
    with tempfile.TemporaryDirectory() as tmp:
        sample = generate_sample(Path(tmp) / "sample", days=days)
        settings = Settings(
            _env_file=None, home=Path(tmp) / "home", allow_local_paths=True, local_media_roots=[sample.out_dir]
        )
        load_ads_csv(settings, sample.raw_ads_csv)
        window = Window(sample.start, sample.end)
        with StageContext(settings, window, run_id="bench") as ctx:
            for stage in (ingest.run, media.fetch, media.analyse, media.group):
                stage(ctx)
            wh = ctx.warehouse
            rows = wh.query(
                """SELECT c.creative_id, c.media_type, h.width, h.height, v.duration_s, v.has_audio,
                          g.is_canonical, COUNT(*) AS ad_rows
                   FROM {{ source_ads }} AS a
                   JOIN {{ creatives }} AS c ON c.url = COALESCE(a.image_url, a.video_url)
                   LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = c.creative_id
                   LEFT JOIN {{ video_metadata }} AS v ON v.creative_id = c.creative_id
                   LEFT JOIN {{ duplicate_groups }} AS g ON g.creative_id = c.creative_id
                   GROUP BY 1, 2, 3, 4, 5, 6, 7""",
                {},
                ctx.source_names(),
            )

    def known(value):  # pandas NA / NaN -> None
        return None if pd.isna(value) else value

    def price(row, mode: str = "online") -> float:
        video = row.media_type == "video"
        usage = pricing.estimate_usage(
            schema.render_prompt("video" if video else "image"),
            width=None if video else known(row.width),
            height=None if video else known(row.height),
            duration_s=known(row.duration_s) if video else None,
            has_audio=known(row.has_audio),
            video=video,
        )
        return prices.cost(model, usage, mode)  # type: ignore[arg-type]

    per_row = sum(price(r) * r.ad_rows for r in rows.itertuples())
    per_url = sum(price(r) for r in rows.itertuples())
    ours_rows = [r for r in rows.itertuples() if r.media_type == "video" or bool(known(r.is_canonical))]
    ours_online = sum(price(r) for r in ours_rows)
    ours_batch = sum(price(r, "batch") for r in ours_rows)
    n_rows = int(rows.ad_rows.sum())
    print(
        f"sample: {n_rows} ad rows over {days} days, {len(rows)} distinct URLs "
        f"({int((rows.media_type == 'image').sum())} images, {int((rows.media_type == 'video').sum())} videos); "
        f"model {model}, prices {prices.version}"
    )
    print(f"  naive: every ad row's URL, online     : {n_rows:5d} calls  ${per_row:8.4f}")
    print(f"  every distinct URL, online            : {len(rows):5d} calls  ${per_url:8.4f}")
    print(
        f"  ours: canonical images + videos       : {len(ours_rows):5d} calls  ${ours_online:8.4f} online, "
        f"${ours_batch:.4f} batch"
    )
    print(f"  saving vs naive: {per_row / ours_batch:.0f}x (batch), {per_row / ours_online:.0f}x (online)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--n", type=int, default=1000)
    t.add_argument("--rpm", type=float, default=300)
    t.add_argument("--latency", type=float, default=1.5)
    t.add_argument("--concurrency", type=int, default=16)
    t.add_argument("--sequential-n", type=int, default=20)
    t.add_argument("--model", default="gemini-2.5-flash")
    c = sub.add_parser("cost")
    c.add_argument("--model", default="gemini-2.5-flash")
    c.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    if args.what == "throughput":
        throughput(args.n, args.rpm, args.latency, args.concurrency, args.sequential_n, args.model)
    else:
        cost(args.model, args.days)


if __name__ == "__main__":
    main()
