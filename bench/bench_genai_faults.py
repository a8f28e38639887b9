"""Fault drill: the features stage on the demo sample against fake Gemini and Azure OpenAI servers that fail a share
of requests at random, then the same check from the outside: nothing lost, nothing paid twice, the ledger equal to
the bill.

python bench/bench_genai_faults.py                          # 20 % faults, both providers, 14 days of sample
python bench/bench_genai_faults.py --rate 0.5 --providers gemini --days 7 --seed 3

The sample is generated, imported and run through the media stages once; each provider then gets a copy of that
home and its own stub (``GeminiStub`` / ``OpenAIStub`` with ``chaos``): 429 with the delay as that service sends it
(Gemini: the body's RetryInfo; Azure: Retry-After), 500, 503, connection resets, timeouts (the stub answers after
the client's timeout), HTTP 200 with an HTML page, malformed JSON, off-schema JSON and content-filtered answers
(Azure also filtered prompts). The features stage (images, then videos) runs twice, as a DAG run and a later one,
under the real SDKs (google-genai; LangChain's AzureChatOpenAI).

Printed per provider:
  attempted     items the first run had to extract (canonical images + videos)
  ok / blocked / failed   final feature rows (failed = invalid_response, failed, rate_limited)
  lost          attempted items without a feature row after the runs (must be 0)
  paid twice    media the server sent a clean answer for more than once (must be 0); counted by the server
  ledger / billed         USD in genai_usage beside the server's bill priced with the same table, and the tokens
                (must be equal)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GEMINI_FAULTS = ["429", "500", "503", "reset", "slow", "garbage", "malformed", "wrong_schema", "blocked"]
AZURE_FAULTS = [*GEMINI_FAULTS, "prompt_filtered"]
TIMEOUT_S = 2.0


def prepare(home: Path, days: int) -> tuple[Any, Any]:
    """The demo sample imported and through the media stages, as the features stage finds it."""
    from adpipeline.demo.sample import generate_sample
    from adpipeline.sample_load import load_ads_csv
    from adpipeline.settings import Settings
    from adpipeline.stages import ingest, media
    from adpipeline.stages.context import StageContext
    from adpipeline.window import Window

    sample = generate_sample(home.parent / "sample", days=days)
    settings = Settings(_env_file=None, home=home, allow_local_paths=True)
    load_ads_csv(settings, sample.raw_ads_csv)
    window = Window(sample.start, sample.end)
    with StageContext(settings, window, run_id="prepare") as ctx:
        for stage in (ingest.run, media.fetch, media.analyse, media.group):
            stage(ctx)
    return sample, window


def billed_usage(provider: str, usage: dict[str, Any]) -> Any:
    """One bill as token counts, read straight from the wire format (not through the providers' code)."""
    from adpipeline.features.pricing import TokenUsage

    if provider == "gemini":
        by = {d["modality"]: d["tokenCount"] for d in usage.get("promptTokensDetails", [])}
        return TokenUsage(
            input_text_tokens=by.get("TEXT", 0) + by.get("DOCUMENT", 0),
            input_image_tokens=by.get("IMAGE", 0),
            input_video_tokens=by.get("VIDEO", 0),
            input_audio_tokens=by.get("AUDIO", 0),
            cached_tokens=usage.get("cachedContentTokenCount", 0),
            output_tokens=usage.get("candidatesTokenCount", 0),
            thinking_tokens=usage.get("thoughtsTokenCount", 0),
        )
    reasoning = usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0)
    return TokenUsage(
        input_text_tokens=usage["prompt_tokens"],
        cached_tokens=usage.get("prompt_tokens_details", {}).get("cached_tokens", 0),
        output_tokens=usage["completion_tokens"] - reasoning,
        thinking_tokens=reasoning,
    )


def drill(provider: str, home: Path, window: Any, rate: float, seed: int) -> dict[str, Any]:
    from adpipeline.features import schema
    from adpipeline.features.pricing import TokenUsage, load_prices
    from adpipeline.settings import Settings
    from adpipeline.stages import features
    from adpipeline.stages.context import StageContext
    from adpipeline.testing import GeminiStub, OpenAIStub

    stub: Any = GeminiStub() if provider == "gemini" else OpenAIStub()
    with stub:
        stub.thoughts_tokens = 64  # a model that thinks a little: billed as output, must reach the ledger
        stub.reasoning_tokens = 64
        faults = GEMINI_FAULTS if provider == "gemini" else AZURE_FAULTS
        stub.chaos(rate, faults, seed=seed, retry_after=0.2, delay_s=TIMEOUT_S + 1.0)
        common: dict[str, Any] = {
            "genai_timeout_s": TIMEOUT_S,
            "genai_backoff_s": 0.05,
            "genai_max_retries": 4,
            "genai_concurrency": 8,
            "genai_rpm": 1e6,
            "genai_mode": "online",
            "genai_thinking_budget": 256,
            "run_budget_usd": 100.0,
            "max_failure_share": 1.0,  # the drill counts failures itself
        }
        if provider == "gemini":
            common |= {"feature_provider": "gemini", "gemini_base_url": stub.url, "gemini_api_version": "v1beta"}
        else:
            common |= {
                "feature_provider": "langchain",
                "langchain_model": "azure_openai:gpt-4o-mini",
                "langchain_base_url": stub.url,
                "langchain_api_key": "drill",
                "langchain_video_frames": 4,
            }
        settings = Settings(_env_file=None, home=home, allow_local_paths=True, **common)
        attempted: set[str] = set()
        started = time.perf_counter()
        for run_id in ("drill-1", "drill-2"):
            with StageContext(settings, window, run_id=run_id) as ctx:
                if run_id == "drill-1":
                    ctx.warehouse.ensure_tables(features.FEATURE_TABLES)
                    model = features.get_provider(settings)
                    params = {
                        **window.params(),
                        "provider": model.name,
                        "model": model.model,
                        "prompt_version": schema.PROMPT_VERSION,
                    }
                    for modality in ("image", "video"):
                        todo = ctx.warehouse.query_file(f"features/select_pending_{modality}s", params)
                        attempted |= set(todo.creative_id)
                features.images(ctx)
                features.videos(ctx)
        took = time.perf_counter() - started
        with StageContext(settings, window) as ctx:
            rows = [
                *ctx.warehouse.read_table("image_features").to_dict("records"),
                *ctx.warehouse.read_table("video_features").to_dict("records"),
            ]
            ledger = ctx.warehouse.read_table("genai_usage").to_dict("records")
        bills = stub.bills
    statuses = Counter(r["status"] for r in rows if r["creative_id"] in attempted)
    prices = load_prices()
    model = "gemini-2.5-flash" if provider == "gemini" else "gpt-4o-mini"
    billed_tokens = sum((billed_usage(provider, b.usage) for b in bills), TokenUsage())
    ledger_tokens = sum(
        (TokenUsage(**{k: int(u[k]) for k in TokenUsage().as_columns()}) for u in ledger if u["mode"] == "online"),
        TokenUsage(),
    )
    clean = Counter(b.media_key for b in bills if b.clean and b.media_key)
    requests = sum(r.endpoint in ("generate", "chat") for r in stub.requests)
    return {
        "provider": "gemini (google-genai)" if provider == "gemini" else "azure openai (langchain)",
        "attempted": len(attempted),
        "ok": statuses.get("ok", 0),
        "blocked": statuses.get("blocked", 0),
        "failed": sum(n for s, n in statuses.items() if s not in ("ok", "blocked")),
        "lost": len(attempted - {r["creative_id"] for r in rows}),
        "paid_twice": sum(1 for n in clean.values() if n > 1),
        "ledger_usd": round(sum(u["cost_usd"] for u in ledger), 6),
        "billed_usd": round(sum(prices.cost(model, billed_usage(provider, b.usage)) for b in bills), 6),
        "ledger_tokens": ledger_tokens,
        "billed_tokens": billed_tokens,
        "requests": requests,
        "answers_billed": len(bills),
        "seconds": took,
        "statuses": dict(statuses),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=0.2, help="share of model requests that get a fault")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--providers", default="gemini,azure")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "prepared"
        _, window = prepare(base, args.days)
        for provider in args.providers.split(","):
            home = Path(tmp) / provider
            shutil.copytree(base, home)
            results.append(drill(provider, home, window, args.rate, args.seed))
    print(f"fault drill: {args.rate:.0%} of model requests faulted, seed {args.seed}, {args.days} days of sample")
    print("  faults drawn from: " + ", ".join(AZURE_FAULTS) + " (prompt_filtered: Azure only)")
    failed_checks = []
    for r in results:
        print(
            f"\n{r['provider']}: {r['requests']} requests, {r['answers_billed']} answers billed, {r['seconds']:.0f} s"
        )
        print(
            f"  items attempted {r['attempted']:4d}   ok {r['ok']:4d}   blocked {r['blocked']:3d}   "
            f"failed {r['failed']:3d}"
        )
        print(f"  lost            {r['lost']:4d}   (must be 0)")
        print(f"  paid twice      {r['paid_twice']:4d}   (must be 0)")
        print(f"  ledger total    ${r['ledger_usd']:.6f}   billed by the fake server ${r['billed_usd']:.6f}")
        lt, bt = r["ledger_tokens"], r["billed_tokens"]
        print(
            f"  tokens in/out   ledger {lt.input_tokens}/{lt.output_tokens + lt.thinking_tokens}   "
            f"billed {bt.input_tokens}/{bt.output_tokens + bt.thinking_tokens}"
        )
        print(f"  final statuses  {r['statuses']}")
        if r["lost"] or r["paid_twice"] or abs(r["ledger_usd"] - r["billed_usd"]) > 1e-6 or lt != bt:
            failed_checks.append(r["provider"])
    if failed_checks:
        print(f"\nFAILED: {', '.join(failed_checks)}")
        sys.exit(1)
    print("\nall checks hold: nothing lost, nothing paid twice, ledger == bill")


if __name__ == "__main__":
    main()
