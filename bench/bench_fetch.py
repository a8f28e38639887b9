"""Fetch throughput against a local server that answers every request after 100 ms: concurrent vs sequential;
and, with ``--memory``, the memory one large body costs while it streams into the bucket.

python bench/bench_fetch.py [--n 200] [--latency 0.1]
python bench/bench_fetch.py --memory [--mib 64]      # BENCH_CODE_DIR=<checkout> measures another checkout's code
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, os.environ.get("BENCH_CODE_DIR") or str(Path(__file__).resolve().parents[1]))

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


def serve_body(body: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            data = BODY if "warm" in self.path else body
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            view = memoryview(data)
            for start in range(0, len(data), 2**20):
                self.wfile.write(view[start : start + 2**20])

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_child(url: str, port: int, home: str, mib: int) -> None:
    """In a fresh process: fetch one body, print RSS before, peak RSS after, and the Python allocation peak."""
    import tracemalloc

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=Path(home),
        fetch_allowlist=[f"127.0.0.1:{port}"],
        max_video_bytes=(mib + 1) * 2**20,
        fetch_total_timeout_s=120.0,
    )
    bucket = Bucket(str(Path(home) / "bucket"))
    fetch_all([FetchRequest("warm", url + "?warm", "image")], settings, bucket)  # imports, loop, client: warmed up
    rss_before = _status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS (Linux)
    tracemalloc.start()
    [result] = fetch_all([FetchRequest("big", url, "video")], settings, bucket)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert result.status == "ok", (result.status, result.reason)
    print(json.dumps({"rss_before_kib": rss_before, "rss_peak_kib": _status_kib("VmHWM"), "traced_peak": traced_peak}))


def memory(mib: int) -> None:
    body = os.urandom(mib * 2**20)
    httpd = serve_body(body)
    port = httpd.server_address[1]
    with tempfile.TemporaryDirectory() as home:
        url = f"http://127.0.0.1:{port}/video.mp4"
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", url, str(port), home, str(mib)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    httpd.shutdown()
    figures = json.loads(out.strip().splitlines()[-1])
    grew = (figures["rss_peak_kib"] - figures["rss_before_kib"]) / 1024
    print(
        f"one {mib} MiB body: peak RSS grew {grew:.1f} MiB during the fetch "
        f"(before {figures['rss_before_kib'] / 1024:.0f} MiB, peak {figures['rss_peak_kib'] / 1024:.0f} MiB); "
        f"Python allocations peaked at {figures['traced_peak'] / 2**20:.2f} MiB"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        memory_child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--memory", action="store_true", help="measure the memory of one large body instead")
    parser.add_argument("--mib", type=int, default=64)
    args = parser.parse_args()
    if args.memory:
        memory(args.mib)
    else:
        run(args.n, args.latency)
