"""Local HTTP stand-ins for LLM APIs, so tests drive the real SDKs with no network.

* :class:`GeminiStub` speaks the Gemini Developer API (``google-genai``): generateContent, countTokens, the
  resumable Files API and the Batch API (see :mod:`adpipeline.testing.gemini_stub`);
* :class:`OpenAIStub` speaks OpenAI / Azure OpenAI chat completions (see :mod:`adpipeline.testing.openai_stub`).

Both bind 127.0.0.1 (port 0: a free one), serve from a daemon thread, work as context managers and share one control
surface (:mod:`adpipeline.testing._server`): ``url``, ``fail(kind, times=, endpoint=, retry_after=, delay_s=)``,
``chaos(rate, kinds, seed=)``, ``answer(value, model=)``, ``latency_s``, ``requests``, ``count(endpoint)``,
``pending_faults``, ``billed`` and ``bills`` (what the provider would charge, answer by answer).

Standalone, e.g. for a throughput bench::

    python -m adpipeline.testing.genai_stub --port 8089 --latency 1.5 [--openai]
"""

from __future__ import annotations

import argparse
import threading

from adpipeline.testing._server import Bill, Fault, RecordedRequest
from adpipeline.testing.gemini_stub import GeminiStub
from adpipeline.testing.openai_stub import OpenAIStub

__all__ = ["Bill", "Fault", "GeminiStub", "OpenAIStub", "RecordedRequest", "main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adpipeline.testing.genai_stub", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every generation")
    parser.add_argument("--openai", action="store_true", help="serve OpenAI chat completions instead of Gemini")
    args = parser.parse_args(argv)
    stub = (OpenAIStub if args.openai else GeminiStub)(port=args.port, latency_s=args.latency)
    with stub:
        print(f"{type(stub).__name__} listening on {stub.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
