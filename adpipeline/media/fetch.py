"""The safe fetcher: every stage that reads media by URL goes through :func:`fetch_all`.

How it stays safe:

* Schemes: ``http``/``https``; ``gs://`` through fsspec; local paths and ``file://`` only when
  ``settings.allow_local_paths``, and then only under ``settings.local_media_roots`` (symlinks resolved; else
  ``blocked_path``). Anything else is ``bad_scheme`` before any connection.
* Addresses: the host is resolved once (``getaddrinfo``, which also reads the odd spellings: ``0x7f000001``,
  ``2130706433``, ``0177.1``, ``[::ffff:127.0.0.1]``); *every* answer must be a public unicast address (IPv4-mapped,
  6to4, NAT64 and Teredo embeddings are unwrapped and checked too), otherwise ``blocked_address``. The request then
  goes to that checked IP literal, with the original ``Host`` header and, for https, the original name as SNI and
  certificate name (httpcore's ``sni_hostname`` extension), so there is no second lookup that a DNS rebinding could
  answer differently. Redirects are followed by hand, each hop checked the same way, up to
  ``fetch_max_redirects``. Environment proxies are ignored (a proxy would do its own lookup).
* ``fetch_allowlist`` exempts hosts, ``host:port`` pairs or CIDRs from the address block: tests use
  ``127.0.0.1:<port>``; production leaves it empty.
* Limits: connect/read timeouts per attempt, ``fetch_total_timeout_s`` for the whole fetch including retries, and the
  byte cap (image or video) counted while streaming; Content-Length is only ever used to refuse early.
* Retries with exponential backoff and jitter on 429 (``Retry-After`` honoured up to a cap), 5xx and transport
  errors; never on other 4xx. The decision is made in one place, :meth:`_Fetcher._get_with_retries`.
* Memory: a body streams into :meth:`Bucket.blob_writer` (hashed on the way to a temporary file, then moved to its
  content-addressed key), so a fetch holds one network chunk (~64 KiB), never the body.
* Every failure is ``transient`` (timeouts, 5xx, 429, connection errors, a body cut short: worth trying again soon)
  or ``permanent`` (the answer will not change: blocked, 404/410, other 4xx, too large, not an image, unsupported
  format); :func:`next_attempt_delay_s` turns that into a back-off for later runs.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import queue
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from adpipeline import tables
from adpipeline.bucket import BlobWriter, Bucket
from adpipeline.media.addresses import Allowlist, is_blocked_address, parse_ip_literal
from adpipeline.media.images import ALLOWED_FORMATS, sniff_image_format, unsupported_reason
from adpipeline.settings import Settings

MediaType = Literal["image", "video"]
MAX_URL_LENGTH = 2048
BLOCKED_HOSTNAMES = {"localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524}
FETCHED = "fetched"  # the row status of stored bytes that the analyse task has not judged yet
_LOCAL_CHUNK = 2**20


@dataclass(frozen=True)
class FetchRequest:
    creative_id: str
    url: str
    media_type: MediaType


@dataclass(frozen=True)
class FetchResult:
    """``status`` is ``ok`` or a reason code; ``reason`` the human detail."""

    creative_id: str
    url: str
    media_type: MediaType
    status: str
    reason: str | None = None
    sha256: str | None = None
    blob_key: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    attempts: int = 0
    transient: bool = False  # for a failure: worth trying again soon (timeouts, 5xx, 429, connection errors)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failure_kind(self) -> Literal["transient", "permanent"] | None:
        if self.ok:
            return None
        return "transient" if self.transient else "permanent"

    def to_row(self) -> tables.MediaFetch:
        """The status row: good bytes are ``fetched`` (the analyse task turns them into ``ok`` or a verdict)."""
        return tables.MediaFetch(
            creative_id=self.creative_id,
            url=self.url,
            media_type=self.media_type,
            status=FETCHED if self.ok else self.status,
            reason=self.reason,
            sha256=self.sha256,
            content_type=self.content_type,
            size_bytes=self.size_bytes,
            blob_path=self.blob_key,
            attempts=self.attempts,
            failure_kind=self.failure_kind,
            failed_runs=0,
            next_attempt_at=None,
        )


def next_attempt_delay_s(kind: Literal["transient", "permanent"], failed_runs: int, settings: Settings) -> float:
    """Seconds before a creative that has now failed ``failed_runs`` runs in a row is fetched again: the first wait of
    its kind, doubled per further failed run, capped by ``fetch_retry_max_s``."""
    first = settings.fetch_retry_transient_s if kind == "transient" else settings.fetch_retry_permanent_s
    return float(min(first * 2 ** min(max(failed_runs - 1, 0), 30), settings.fetch_retry_max_s))


class FetchError(Exception):
    """A per-item failure with its status code; caught in one place and turned into a result."""

    def __init__(self, status: str, reason: str, *, transient: bool = False) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason
        self.transient = transient


class _Retryable(Exception):
    def __init__(self, status: str, reason: str, delay: float | None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.delay = delay


# --- public entry points -------------------------------------------------------------------------
def fetch_all(
    requests: Sequence[FetchRequest],
    settings: Settings,
    bucket: Bucket,
    *,
    cached: Mapping[str, tuple[str, str]] | None = None,
) -> list[FetchResult]:
    """Fetch every request concurrently (per-host limited), store bytes in ``bucket``; one result per request, in order.

    ``cached`` maps url -> (sha256, blob_key) of earlier ok fetches: those are answered from the bucket without a
    request, unless ``settings.refresh_media`` or the blob has gone. Never raises for a per-item problem.
    """
    results: list[FetchResult | None] = [None] * len(requests)
    for index, result in _iterate(requests, settings, bucket, cached):
        results[index] = result
    return [r for r in results if r is not None]


def fetch_iter(
    requests: Sequence[FetchRequest],
    settings: Settings,
    bucket: Bucket,
    *,
    cached: Mapping[str, tuple[str, str]] | None = None,
) -> Iterator[FetchResult]:
    """Like :func:`fetch_all`, but yields each result as soon as its fetch ends (completion order), so the caller can
    write rows as it goes. Leaving the loop early cancels the fetches still running."""
    for _index, result in _iterate(requests, settings, bucket, cached):
        yield result


_DONE = object()


def _iterate(
    requests: Sequence[FetchRequest],
    settings: Settings,
    bucket: Bucket,
    cached: Mapping[str, tuple[str, str]] | None,
) -> Iterator[tuple[int, FetchResult]]:
    """Run the fetches on an event loop in a thread of our own (so a caller inside a loop works too) and hand the
    results over a queue as they finish."""
    out: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        try:
            emit = lambda index, result: out.put((index, result))  # noqa: E731
            asyncio.run(_fetch_into(list(requests), settings, bucket, dict(cached or {}), emit, stop))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread and raised there
            out.put(exc)
        finally:
            out.put(_DONE)

    thread = threading.Thread(target=run, name="adp-media-fetch", daemon=True)
    thread.start()
    try:
        while (item := out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()


async def _fetch_into(
    requests: list[FetchRequest],
    settings: Settings,
    bucket: Bucket,
    cached: dict[str, tuple[str, str]],
    emit: Callable[[int, FetchResult], None],
    stop: threading.Event,
) -> None:
    fetcher = _Fetcher(settings, bucket)
    sharing: dict[tuple[str, str], list[int]] = {}
    for index, request in enumerate(requests):  # one fetch per distinct URL in the batch
        sharing.setdefault((request.url, request.media_type), []).append(index)
    tasks = {
        asyncio.ensure_future(fetcher.fetch(requests[indexes[0]], cached.get(requests[indexes[0]].url))): indexes
        for indexes in sharing.values()
    }
    watcher = asyncio.ensure_future(_cancel_on(stop, list(tasks)))
    try:
        for done in asyncio.as_completed(list(tasks)):
            result = await done
            for index in sharing[(result.url, result.media_type)]:
                emit(index, replace(result, creative_id=requests[index].creative_id))
    finally:
        watcher.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fetcher.aclose()


async def _cancel_on(stop: threading.Event, tasks: list[asyncio.Future[FetchResult]]) -> None:
    """The consumer left early: cancel what is still running (temporary files are removed on the way out)."""
    while not stop.is_set():
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()


# --- the fetcher ----------------------------------------------------------------------------------
class _Fetcher:
    def __init__(self, settings: Settings, bucket: Bucket) -> None:
        self.settings = settings
        self.bucket = bucket
        self.slots = asyncio.Semaphore(settings.fetch_concurrency)
        self.host_slots: dict[str, asyncio.Semaphore] = {}
        # One client per (scheme, host): connections are pooled by the IP we connect to, and a pool must never hand
        # a connection opened for one name (SNI, certificate) to a request for another name on the same IP.
        self.clients: dict[tuple[str, str], httpx.AsyncClient] = {}
        self.allow = Allowlist(settings.fetch_allowlist)

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    def _client(self, scheme: str, host: str) -> httpx.AsyncClient:
        key = (scheme, host)
        if key not in self.clients:
            s = self.settings
            self.clients[key] = httpx.AsyncClient(
                timeout=httpx.Timeout(
                    connect=s.fetch_connect_timeout_s,
                    read=s.fetch_read_timeout_s,
                    write=s.fetch_read_timeout_s,
                    pool=s.fetch_total_timeout_s,
                ),
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_connections=s.fetch_per_host, max_keepalive_connections=s.fetch_per_host),
                headers={"User-Agent": "adpipeline-media-fetcher/1", "Accept-Encoding": "identity"},
            )
        return self.clients[key]

    async def fetch(self, request: FetchRequest, cached: tuple[str, str] | None) -> FetchResult:
        base = FetchResult(request.creative_id, request.url, request.media_type, status="ok")
        if cached is not None and not self.settings.refresh_media:
            sha256, key = cached
            size = await asyncio.to_thread(_blob_size, self.bucket, key)
            if size is not None:
                return replace(base, sha256=sha256, blob_key=key, size_bytes=size, reason="cached")
        attempts = [0]
        body: _Body | None = None
        try:
            async with asyncio.timeout(self.settings.fetch_total_timeout_s):
                body = await self._get(request, attempts)
            writer = body.writer
            if not writer.size:
                raise FetchError("empty", "zero bytes")
            if request.media_type == "image":
                sniffed = sniff_image_format(writer.head)
                if sniffed is None:
                    raise FetchError(
                        "not_an_image", f"content does not start like an image (type {body.content_type!r})"
                    )
                if sniffed not in ALLOWED_FORMATS:
                    raise FetchError("unsupported_format", unsupported_reason(sniffed))
            sha256, key = await asyncio.to_thread(writer.commit)
            return replace(
                base,
                sha256=sha256,
                blob_key=key,
                content_type=body.content_type,
                size_bytes=writer.size,
                attempts=attempts[0],
            )
        except FetchError as exc:
            return replace(base, status=exc.status, reason=exc.reason, attempts=attempts[0], transient=exc.transient)
        except TimeoutError:
            total = self.settings.fetch_total_timeout_s
            reason = f"over the total time of {total:g}s"
            return replace(base, status="timeout", reason=reason, attempts=attempts[0], transient=True)
        finally:
            if body is not None:
                body.writer.discard()  # a no-op after commit

    async def _get(self, request: FetchRequest, attempts: list[int]) -> _Body:
        url = request.url
        cap = self.settings.max_image_bytes if request.media_type == "image" else self.settings.max_video_bytes
        if len(url) > MAX_URL_LENGTH:
            raise FetchError("bad_url", f"URL is {len(url)} characters (limit {MAX_URL_LENGTH})")
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            return await self._get_http(url.strip(), cap, attempts)
        if scheme == "gs":
            attempts[0] = 1
            async with self.slots:
                return await asyncio.to_thread(_read_fsspec, url, cap, self.bucket)
        if scheme == "file" or (scheme == "" and url.strip()) or _is_windows_drive(scheme):
            if not self.settings.allow_local_paths:
                raise FetchError("bad_scheme", "local paths are not allowed (ADP_ALLOW_LOCAL_PATHS)")
            attempts[0] = 1
            path = unquote(parts.path) if scheme == "file" else url.strip()
            async with self.slots:
                return await asyncio.to_thread(
                    _read_local, path, cap, self.bucket, self.settings.resolved_local_media_roots
                )
        raise FetchError("bad_scheme", f"scheme {scheme or '(none)'!r} is not allowed")

    async def _get_http(self, url: str, cap: int, attempts: list[int]) -> _Body:
        seen: set[str] = set()
        for _hop in range(self.settings.fetch_max_redirects + 1):
            if url in seen:
                raise FetchError("redirect_loop", f"redirected back to {url[:200]}")
            seen.add(url)
            target = await self._check_url(url)
            outcome = await self._get_with_retries(target, cap, attempts)
            if isinstance(outcome, str):  # a redirect: check the next hop like the first
                url = outcome
                continue
            return outcome
        raise FetchError("redirect_loop", f"more than {self.settings.fetch_max_redirects} redirects")

    async def _check_url(self, url: str) -> _Target:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError("bad_scheme", f"redirect to scheme {scheme or '(none)'!r} is not allowed")
        try:
            host = parts.hostname
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise FetchError("bad_url", str(exc)) from exc
        if not host:
            raise FetchError("bad_url", "URL has no host")
        host = host.rstrip(".").lower()
        if parts.username or parts.password:
            raise FetchError("bad_url", "credentials in URLs are not allowed")
        allowed = self.allow.host_allowed(host, port)
        if not allowed and (host in BLOCKED_HOSTNAMES or host.endswith((".localhost", ".internal"))):
            raise FetchError("blocked_address", f"host {host} is internal")
        addresses = await _resolve(host, port)
        for address in addresses:
            if not (allowed or self.allow.address_allowed(address, port)) and is_blocked_address(address):
                raise FetchError("blocked_address", f"{host} resolves to {address}, a non-public address")
        address = addresses[0]
        literal = f"[{address}]" if address.version == 6 else str(address)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return _Target(url, scheme, host, port, f"{scheme}://{literal}:{port}{path}")

    async def _get_with_retries(self, target: _Target, cap: int, attempts: list[int]) -> _Body | str:
        settings = self.settings
        for attempt in range(settings.fetch_max_retries + 1):
            attempts[0] += 1
            try:
                async with self._host_slot(target.host), self.slots:
                    return await self._get_once(target, cap)
            except _Retryable as exc:
                if attempt >= settings.fetch_max_retries:
                    reason = f"{exc.reason} after {attempt + 1} attempts"
                    raise FetchError(exc.status, reason, transient=True) from None
                delay = exc.delay if exc.delay is not None else settings.fetch_backoff_s * 2**attempt
                if delay > settings.fetch_max_retry_after_s:
                    reason = f"{exc.reason}; asked to wait {delay:g}s"
                    raise FetchError("rate_limited", reason, transient=True) from None
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))
        raise AssertionError("unreachable")

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        if host not in self.host_slots:
            self.host_slots[host] = asyncio.Semaphore(self.settings.fetch_per_host)
        return self.host_slots[host]

    async def _get_once(self, target: _Target, cap: int) -> _Body | str:
        client = self._client(target.scheme, target.host)
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host:  # an IPv6 literal
            host_header = f"[{target.host}]" if target.port == default_port else f"[{target.host}]:{target.port}"
        request = client.build_request(
            "GET",
            target.connect_url,
            headers={"Host": host_header},
            extensions={"sni_hostname": target.host} if target.scheme == "https" else {},
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise _Retryable("timeout", f"{type(exc).__name__} from {target.host}", None) from None
        except httpx.TransportError as exc:
            raise _Retryable("connection_error", f"{type(exc).__name__}: {exc}", None) from None
        try:
            status = response.status_code
            if status in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise FetchError("http_error", f"HTTP {status} without Location")
                return urljoin(target.url, location.strip())
            if status in _TRANSIENT_STATUS:
                raise _Retryable(
                    "http_error", f"HTTP {status}", _retry_after(response) if status in (429, 503) else None
                )
            if status in (404, 410):
                raise FetchError("not_found", f"HTTP {status}")
            if status >= 400:
                raise FetchError("http_error", f"HTTP {status}")
            if status != 200:
                raise FetchError("http_error", f"unexpected HTTP {status}")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > cap:
                raise FetchError("too_large", f"Content-Length {declared} is over the cap of {cap} bytes")
            content_type = response.headers.get("content-type")
            body = _Body(self.bucket, content_type.split(";")[0].strip() if content_type else None)
            try:
                async for piece in response.aiter_raw():
                    if body.writer.size + len(piece) > cap:
                        raise FetchError("too_large", f"body passed the cap of {cap} bytes")
                    body.writer.write(piece)
            except httpx.TimeoutException as exc:
                body.writer.discard()
                raise _Retryable("timeout", f"{type(exc).__name__} while reading", None) from None
            except httpx.RemoteProtocolError as exc:
                body.writer.discard()
                raise _Retryable("truncated", f"body ended early: {exc}", None) from None
            except httpx.TransportError as exc:
                body.writer.discard()
                raise _Retryable("connection_error", f"{type(exc).__name__}: {exc}", None) from None
            except BaseException:  # too large, cancelled by the total timeout
                body.writer.discard()
                raise
            return body
        finally:
            await response.aclose()


class _Body:
    """A response body on its way into the bucket."""

    def __init__(self, bucket: Bucket, content_type: str | None) -> None:
        self.writer = BlobWriter(bucket)
        self.content_type = content_type


@dataclass(frozen=True)
class _Target:
    url: str  # as the user or the redirect gave it
    scheme: str
    host: str
    port: int
    connect_url: str  # same URL with the checked IP literal as host


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- addresses ------------------------------------------------------------------------------------
async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    literal = parse_ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("connection_error", f"cannot resolve {host}: {exc}", transient=True) from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError("connection_error", f"{host} has no address", transient=True)
    return addresses


# --- other sources --------------------------------------------------------------------------------
def _read_local(path: str, cap: int, bucket: Bucket, roots: Sequence[Path]) -> _Body:
    """Copy a local file under one of ``roots`` into the bucket, a chunk at a time."""
    file = Path(path)
    try:
        real = file.resolve()
        if not any(real.is_relative_to(root) for root in roots):
            shown = ", ".join(str(r) for r in roots)
            reason = f"{path} is outside the local media roots ({shown}; ADP_LOCAL_MEDIA_ROOTS)"
            raise FetchError("blocked_path", reason)
        if not real.is_file():
            raise FetchError("not_found", f"no file at {path}")
        size = real.stat().st_size
        if size > cap:
            raise FetchError("too_large", f"{size} bytes is over the cap of {cap}")
        with real.open("rb") as fh:
            return _copy_stream(fh, cap, bucket, None)
    except OSError as exc:
        raise FetchError("connection_error", f"{type(exc).__name__}: {exc}", transient=True) from None


def _read_fsspec(url: str, cap: int, bucket: Bucket) -> _Body:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        if not fs.exists(path):
            raise FetchError("not_found", f"no object at {url}")
        size = fs.size(path)
        if size is not None and size > cap:
            raise FetchError("too_large", f"{size} bytes is over the cap of {cap}")
        with fs.open(path, "rb") as fh:
            return _copy_stream(fh, cap, bucket, None)
    except FetchError:
        raise
    except (OSError, ValueError) as exc:
        raise FetchError("connection_error", f"{type(exc).__name__}: {exc}", transient=True) from None


def _copy_stream(fh: BinaryIO, cap: int, bucket: Bucket, content_type: str | None) -> _Body:
    body = _Body(bucket, content_type)
    try:
        while piece := fh.read(_LOCAL_CHUNK):
            if body.writer.size + len(piece) > cap:
                raise FetchError("too_large", f"over the cap of {cap} bytes")
            body.writer.write(piece)
    except BaseException:
        body.writer.discard()
        raise
    return body


def _blob_size(bucket: Bucket, key: str) -> int | None:
    try:
        if not bucket.exists(key):
            return None
        return int(bucket.fs.size(bucket._path(key)))
    except (OSError, ValueError):
        return None


def _is_windows_drive(scheme: str) -> bool:
    return len(scheme) == 1 and scheme.isalpha()
