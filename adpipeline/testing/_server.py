"""Shared plumbing of the LLM stubs: a threaded HTTP server on 127.0.0.1, a fault queue, canned answers, a request log.

Subclasses declare their ``routes`` (regular expressions over ``path?query``), the fault kinds they understand
(``fault_kinds``), the endpoints where content faults apply (``content_endpoints``) and their error JSON
(``_error_body``). Everything mutable is guarded by one lock, so tests may poke at a stub while a client hammers it.

Fault queue (:meth:`StubServer.fail`): faults are consumed first-in first-out by the next request they match. A fault
with an ``endpoint`` matches only that endpoint; one without matches every faultable endpoint, except that content
faults (``malformed``, ``wrong_schema``, ...) only match ``content_endpoints`` and endpoints listed in
``explicit_endpoints`` are only hit by faults naming them. Transport faults: ``"429"``/``"500"``/``"503"`` (an error
status with the provider's error JSON; ``retry_after`` says when to come back, the way that provider says it: see
``_error_reply``), ``"slow"`` (sleep ``delay_s``, then answer normally: a client timeout shorter than that sees a
timeout), ``"reset"`` (the connection is closed with a TCP reset before any response byte) and ``"garbage"`` (HTTP 200
with a body that is not JSON, as a proxy or a load balancer sometimes sends).

``billed`` sums the usage of every answer that carried usage (what the provider would bill) and ``bills`` lists them
with the media they were about, so a test or a bench can compare a ledger against the bill and find answers paid
twice. ``chaos(rate, kinds, seed=)`` injects faults at random (seeded) into the content endpoints, for fault drills.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import random
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit

from adpipeline.testing._schema_instance import schema_instance, schema_violation

HTTP_FAULTS = frozenset({"429", "500", "503"})
TRANSPORT_FAULTS = HTTP_FAULTS | {"slow", "reset", "garbage"}
MALFORMED_TEXT = "```json {oops"
GARBAGE_BODY = b"<html><body><h1>502 Bad Gateway</h1>upstream answered nothing</body></html>"


@dataclass(frozen=True)
class Fault:
    kind: str
    endpoint: str | None = None
    retry_after: float | None = None
    delay_s: float = 1.0


@dataclass(frozen=True)
class Bill:
    usage: dict[str, Any]  # the usage JSON as sent
    media_key: str  # sha256 prefix of the first media part of the request ("" when it had none)
    clean: bool  # a normal answer (no content fault)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    endpoint: str
    model: str | None
    body: Any  # the parsed JSON body; None for binary (upload chunk) or empty bodies
    size: int  # body size in bytes
    received_at: float  # time.time()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    raw: bytes
    connection: socket.socket | None = None

    def client_gone(self) -> bool:
        """Whether the client hung up (e.g. its timeout fired while a "slow" fault slept)."""
        if self.connection is None:
            return False
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def json(self) -> Any:
        try:
            return json.loads(self.raw) if self.raw else {}
        except ValueError as exc:
            raise StubError(400, f"Invalid JSON payload received: {exc}") from exc


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable; None sends an empty body
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as is instead of ``body`` (the "garbage" fault)
    reset: bool = False  # close the connection with a TCP reset instead of answering


class StubError(Exception):
    """Raised by a route handler to answer with an API error (status + the provider's error JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request, dict[str, str], Fault | None], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # matched in full against "path?query" (an optional "?query" suffix is implied)
    endpoint: str
    handler: Handler
    faultable: bool = True


class StubServer:
    """Base class: start/stop (also as a context manager), faults, canned answers and the request log."""

    fault_kinds: frozenset[str] = TRANSPORT_FAULTS
    content_endpoints: frozenset[str] = frozenset()
    explicit_endpoints: frozenset[str] = frozenset()

    def __init__(self, *, port: int = 0, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self._port = port
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._faults: list[Fault] = []
        self._answers: dict[str | None, str] = {}
        self._requests: list[RecordedRequest] = []
        self._bills: list[Bill] = []
        self._chaos: tuple[float, list[str], random.Random, float | None, float] | None = None
        self._server: _Server | None = None
        self.routes: list[Route] = []  # set by subclasses

    # -- lifecycle -------------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("stub not started")
        host, port = self._server.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> Self:
        self._server = _Server(("127.0.0.1", self._port), _handler_class(self))
        serve = functools.partial(self._server.serve_forever, poll_interval=0.05)  # quick shutdown
        threading.Thread(target=serve, name=type(self).__name__, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- test controls ---------------------------------------------------------------------------------------------
    def fail(
        self,
        kind: str,
        *,
        times: int = 1,
        endpoint: str | None = None,
        retry_after: float | None = None,
        delay_s: float = 1.0,
    ) -> None:
        """Queue ``times`` faults of ``kind`` for the next matching requests (see the module docstring)."""
        if kind not in self.fault_kinds:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(self.fault_kinds)}")
        endpoints = {route.endpoint for route in self.routes if route.faultable} | self.explicit_endpoints
        if endpoint is not None and endpoint not in endpoints:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(endpoints)}")
        if kind not in TRANSPORT_FAULTS and endpoint is not None and endpoint not in self.content_endpoints:
            raise ValueError(f"fault {kind!r} only applies to {sorted(self.content_endpoints)}")
        with self._lock:
            self._faults.extend([Fault(kind, endpoint, retry_after, delay_s)] * times)

    def answer(self, value: Any, *, model: str | None = None) -> None:
        """Answer every later generation (for ``model``, else for all models) with ``value``: a str is sent as is,
        anything else JSON-encoded. A per-model answer beats the global one; both beat the schema-derived answer."""
        with self._lock:
            self._answers[_model_id(model)] = value if isinstance(value, str) else json.dumps(value)

    @property
    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def billed(self) -> dict[str, int]:
        """Token counts summed over every answer sent with usage (the provider's bill), by usage field name
        (nested ones dotted: ``prompt_tokens_details.cached_tokens``, ``promptTokensDetails.IMAGE``)."""
        with self._lock:
            totals: dict[str, int] = {}
            for bill in self._bills:
                for name, value in _flat(bill.usage):
                    totals[name] = totals.get(name, 0) + value
            return totals

    @property
    def bills(self) -> list[Bill]:
        """Every answer sent with usage, in order: what it billed, which media it was about, and whether it was a
        clean answer (no content fault): a media key with two clean answers was paid for twice."""
        with self._lock:
            return list(self._bills)

    def _bill(self, usage: dict[str, Any], *, media_key: str, clean: bool) -> None:
        with self._lock:
            self._bills.append(Bill(usage, media_key, clean))

    def chaos(
        self,
        rate: float,
        kinds: list[str],
        *,
        seed: int = 0,
        retry_after: float | None = None,
        delay_s: float = 1.0,
    ) -> None:
        """From now on, each request to a content endpoint that no queued fault matches gets, with probability
        ``rate``, a fault drawn evenly from ``kinds`` (seeded, so a drill can be repeated)."""
        for kind in kinds:
            if kind not in self.fault_kinds:
                raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(self.fault_kinds)}")
        with self._lock:
            self._chaos = (rate, list(kinds), random.Random(seed), retry_after, delay_s)  # noqa: S311 - not crypto

    def count(self, endpoint: str) -> int:
        """How many requests hit ``endpoint`` so far."""
        with self._lock:
            return sum(request.endpoint == endpoint for request in self._requests)

    # -- for subclasses --------------------------------------------------------------------------------------------
    def _error_body(self, status: int, message: str, retry_after: float | None) -> dict[str, Any]:
        raise NotImplementedError

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}{next(self._ids)}"

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if self._matches(fault, endpoint):
                    return self._faults.pop(index)
            if self._chaos is not None and endpoint in self.content_endpoints - self.explicit_endpoints:
                rate, kinds, rng, retry_after, delay_s = self._chaos
                if rng.random() < rate:
                    return Fault(rng.choice(kinds), endpoint, retry_after, delay_s)
        return None

    def _matches(self, fault: Fault, endpoint: str) -> bool:
        if fault.endpoint is not None:
            return fault.endpoint == endpoint
        if endpoint in self.explicit_endpoints:
            return False
        return fault.kind in TRANSPORT_FAULTS or endpoint in self.content_endpoints

    def _answer_text(self, model: str, schema: dict[str, Any] | None, json_mode: bool, fault: Fault | None) -> str:
        """The generated text: a malformed/mistyped answer for content faults, else canned, else schema-derived."""
        if fault is not None and fault.kind == "malformed":
            return MALFORMED_TEXT
        if fault is not None and fault.kind == "wrong_schema":
            return json.dumps(schema_violation(schema or {}))
        with self._lock:
            canned = self._answers.get(_model_id(model), self._answers.get(None))
        if canned is not None:
            return canned
        if schema is not None:
            return json.dumps(schema_instance(schema))
        return "{}" if json_mode else "stub answer"

    def _retry_headers(self, retry_after: float) -> dict[str, str]:
        """Headers saying when to come back (OpenAI and Azure send both; Gemini overrides: body only)."""
        return {"Retry-After": f"{retry_after:g}", "retry-after-ms": f"{retry_after * 1000:.0f}"}

    def _error_reply(self, status: int, message: str, retry_after: float | None = None) -> Reply:
        headers = {} if retry_after is None else self._retry_headers(retry_after)
        return Reply(status, self._error_body(status, message, retry_after), headers)

    def _handle(self, request: Request) -> Reply:
        target = request.path + (f"?{urlencode(request.query)}" if request.query else "")
        for route in self.routes:
            match = re.fullmatch(route.pattern + r"(?:\?.*)?", target)
            if route.method == request.method and match:
                return self._dispatch(route, request, match.groupdict())
        return self._error_reply(404, f"no stub route for {request.method} {request.path}")

    def _dispatch(self, route: Route, request: Request, params: dict[str, str]) -> Reply:
        self._record(request, route.endpoint, params.get("model"))
        fault = self._take_fault(route.endpoint) if route.faultable else None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay_s)
            fault = None
            if request.client_gone():  # nothing is generated (nor billed) for a client that gave up
                return Reply(reset=True)
        if fault is not None and fault.kind in HTTP_FAULTS:
            return self._error_reply(int(fault.kind), f"stub fault {fault.kind}", fault.retry_after)
        if fault is not None and fault.kind == "reset":
            return Reply(reset=True)
        if fault is not None and fault.kind == "garbage":
            return Reply(200, raw=GARBAGE_BODY, headers={"Content-Type": "text/html"})
        try:
            return route.handler(request, params, fault)
        except StubError as exc:
            return self._error_reply(exc.status, exc.message)

    def _record(self, request: Request, endpoint: str, model: str | None) -> None:
        try:
            body = json.loads(request.raw) if request.raw else None
        except ValueError:  # binary, e.g. an upload chunk (the SDK labels those application/json too)
            body = None
        entry = RecordedRequest(request.method, request.path, endpoint, model, body, len(request.raw), time.time())
        with self._lock:
            self._requests.append(entry)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a throughput bench opens many connections at once


def media_key(data: bytes | str) -> str:
    """A short stable key for a request's media (which creative a bill was about)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()[:16]


def _flat(usage: dict[str, Any], prefix: str = "") -> list[tuple[str, int]]:
    pairs: list[tuple[str, int]] = []
    for name, value in usage.items():
        if isinstance(value, dict):
            pairs.extend(_flat(value, f"{prefix}{name}."))
        elif isinstance(value, int) and not isinstance(value, bool):
            pairs.append((f"{prefix}{name}", value))
        elif isinstance(value, list):  # Gemini's promptTokensDetails: [{"modality": "TEXT", "tokenCount": 12}]
            for entry in value:
                if isinstance(entry, dict) and "modality" in entry:
                    pairs.append((f"{prefix}{name}.{entry['modality']}", int(entry.get("tokenCount") or 0)))
    return pairs


def _model_id(model: str | None) -> str | None:
    return model.removeprefix("models/") if model else None


def _handler_class(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Request(self.command, url.path, dict(parse_qsl(url.query)), self.headers, raw, self.connection)
            try:
                reply = stub._handle(request)
            except Exception as exc:  # a stub bug: surface it to the client instead of dropping the connection
                reply = stub._error_reply(500, f"stub bug: {exc!r}")
            self._send(reply)

        do_POST = do_DELETE = do_GET

        def _send(self, reply: Reply) -> None:
            if reply.reset:
                self.close_connection = True
                # SO_LINGER with a zero timeout makes close() send RST: the client sees a reset, not a clean EOF.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            payload = reply.raw if reply.raw is not None else b""
            if reply.raw is None and reply.body is not None:
                payload = json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                for name, value in {"Content-Type": "application/json; charset=UTF-8", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. its timeout beat a "slow" fault)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request stderr logging
            pass

    return _Handler
