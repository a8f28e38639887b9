"""Fetch throughput against a local server that answers every request after 100 ms: concurrent vs sequential.

python bench/bench_fetch.py [--n 200] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adpipeline.bucket import Bucket  # noqa: E402
from adpipeline.media.fetch import FetchRequest, fetch_all  # noqa: E402
from adpipeline.settings import Settings  # noqa: E402

BODY = b"\xff\xd8\xff" + b"\0" * 20_000


def serve(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            time.sleep(latency)
            body = BODY + self.path.encode()  # distinct bytes per URL
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    httpd = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def run(n: int, latency: float) -> None:
    httpd = serve(latency)
    port = httpd.server_address[1]
    with tempfile.TemporaryDirectory() as home:

        def settings(concurrency: int, per_host: int) -> Settings:
            return Settings(
                _env_file=None,
                home=Path(home),
                fetch_allowlist=[f"127.0.0.1:{port}"],  # type: ignore[call-arg]
                fetch_concurrency=concurrency,
                fetch_per_host=per_host,
            )

        bucket = Bucket(str(Path(home) / "bucket"))
        timings = {}
        for label, concurrency, per_host, count in (("sequential", 1, 1, max(10, n // 10)), ("concurrent", 64, 64, n)):
            requests = [
                FetchRequest(f"{label}{i}", f"http://127.0.0.1:{port}/{label}/{i}", "image") for i in range(count)
            ]
            started = time.perf_counter()
            results = fetch_all(requests, settings(concurrency, per_host), bucket)
            took = time.perf_counter() - started
            assert all(r.status == "ok" for r in results), {r.status for r in results}
            timings[label] = count / took
            print(
                f"{label:>10}: {count:4d} fetches in {took:6.2f} s = {count / took:7.1f} fetches/s "
                f"(concurrency {concurrency}, per host {per_host})"
            )
        print(
            f"concurrent / sequential throughput: {timings['concurrent'] / timings['sequential']:.1f}x "
            f"at {latency * 1000:.0f} ms latency"
        )
    httpd.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    run(args.n, args.latency)
