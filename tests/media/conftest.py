"""A threaded HTTP server on 127.0.0.1 with one route per bad behaviour, and media made on the fly."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adpipeline.bucket import Bucket
from adpipeline.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def jpeg_bytes(size: tuple[int, int] = (64, 48), mode: str = "RGB", **save: object) -> bytes:
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    image = Image.fromarray(array, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, "JPEG", **save)
    return out.getvalue()


class Routes:
    """Per-path behaviour; ``hits`` counts requests per path (for retry assertions)."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.image = jpeg_bytes()
        self.delay_s = 0.0
        self.blobs: dict[str, bytes] = {}  # served at /blob/<name>


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            headers = {"Content-Type": "image/jpeg", "Content-Length": str(len(body)), **(headers or {})}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802, C901
            path = self.path.split("?")[0]
            count = routes.hits[path] = routes.hits.get(path, 0) + 1
            port = self.server.server_address[1]
            if routes.delay_s:
                time.sleep(routes.delay_s)
            if path.startswith("/ok"):
                self._send(200, routes.image)
            elif path == "/missing":
                self._send(404, b"nope", {"Content-Type": "text/plain"})
            elif path == "/forbidden":
                self._send(403, b"no", {"Content-Type": "text/plain"})
            elif path == "/error":
                self._send(500, b"boom", {"Content-Type": "text/plain"})
            elif path == "/flaky":
                self._send(503, b"later") if count <= 2 else self._send(200, routes.image)
            elif path == "/ratelimited":
                if count == 1:
                    self._send(429, b"slow down", {"Retry-After": "1"})
                else:
                    self._send(200, routes.image)
            elif path == "/slow":  # one byte per second
                self.send_response(200)
                self.send_header("Content-Length", "100")
                self.end_headers()
                try:
                    for _ in range(100):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(1.0)
                except OSError:
                    pass
            elif path == "/endless":
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"\xff" * 65536
                try:
                    while True:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except OSError:
                    pass
            elif path == "/lying-small":  # claims 10 bytes, then streams far more with no framing
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "10")
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    self.wfile.write(routes.image * 50)
                except OSError:
                    pass
                self.close_connection = True
            elif path == "/lying-big":  # claims more than it sends, then hangs up
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(routes.image) * 2))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(routes.image)
                self.close_connection = True
            elif path == "/huge":
                self._send(200, b"\xff\xd8\xff" + b"\0" * 200_000)
            elif path == "/loop-a":
                self._send(302, headers={"Location": "/loop-b"})
            elif path == "/loop-b":
                self._send(302, headers={"Location": "/loop-a"})
            elif path == "/hop":
                self._send(302, headers={"Location": "/ok-after-hop"})
            elif path.startswith("/redirect-to/"):
                self._send(302, headers={"Location": path[len("/redirect-to/") :].replace("PORT", str(port))})
            elif path == "/html":
                self._send(200, b"<html><body>not an image</body></html>", {"Content-Type": "image/jpeg"})
            elif path == "/empty":
                self._send(200, b"")
            elif path.startswith("/blob/") and path[len("/blob/") :] in routes.blobs:
                self._send(200, routes.blobs[path[len("/blob/") :]])
            elif path.startswith("/fixture/"):
                self._send(200, (FIXTURES / path[len("/fixture/") :]).read_bytes())
            else:
                self._send(404)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:  # clients hang up on purpose
        pass


@pytest.fixture(scope="session")
def server() -> Iterator[tuple[str, Routes]]:
    routes = Routes()
    httpd = _QuietServer(("127.0.0.1", 0), _handler(routes))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    httpd.shutdown()


@pytest.fixture()
def settings(server: tuple[str, Routes], tmp_path: Path) -> Settings:
    base, _ = server
    port = base.rsplit(":", 1)[1]
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=tmp_path,
        fetch_allowlist=[f"127.0.0.1:{port}"],
        fetch_connect_timeout_s=1.0,
        fetch_read_timeout_s=2.0,
        fetch_total_timeout_s=3.0,
        fetch_backoff_s=0.01,
        fetch_max_retries=3,
        max_image_bytes=100_000,
        max_image_pixels=5_000_000,
    )


@pytest.fixture()
def bucket(tmp_path: Path) -> Bucket:
    return Bucket(str(tmp_path / "bucket"))


def with_text(data: bytes, settings: Settings | None = None):  # type: ignore[no-untyped-def]
    """``analyse_image`` facts with the text record grouping would read for the image (``read_image_text``): as if a
    pair had needed it before, so the tests of the text check see it stored."""
    import dataclasses

    from adpipeline.media.images import analyse_image, read_image_text

    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    facts = analyse_image(data, settings)
    return dataclasses.replace(facts, ocr_text=read_image_text(data, settings))
