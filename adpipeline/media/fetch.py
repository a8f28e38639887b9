"""The safe fetcher: every stage that reads media by URL goes through :func:`fetch_all`.

How it stays safe:

* Schemes: ``http``/``https``; ``gs://`` through fsspec; local paths and ``file://`` only when
  ``settings.allow_local_paths``. Anything else is ``bad_scheme`` before any connection.
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
  errors; never on other 4xx. The decision is made in one place, :func:`_retry_delay`.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import random
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from adpipeline import tables
from adpipeline.bucket import Bucket
from adpipeline.settings import Settings

MediaType = Literal["image", "video"]
MAX_URL_LENGTH = 2048
BLOCKED_HOSTNAMES = {"localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
_TRANSIENT_STATUS = {429, 500, 502, 503, 504, 520, 521, 522, 523, 524}


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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_row(self) -> tables.MediaFetch:
        return tables.MediaFetch(
            creative_id=self.creative_id,
            url=self.url,
            media_type=self.media_type,
            status=self.status,
            reason=self.reason,
            sha256=self.sha256,
            content_type=self.content_type,
            size_bytes=self.size_bytes,
            blob_path=self.blob_key,
            attempts=self.attempts,
        )


class FetchError(Exception):
    """A per-item failure with its status code; caught in one place and turned into a result."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class _Retryable(Exception):
    def __init__(self, status: str, reason: str, delay: float | None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.delay = delay


# --- public entry point ---------------------------------------------------------------------------
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
    coroutine = _fetch_all(list(requests), settings, bucket, dict(cached or {}))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from inside an event loop (a notebook, an async task): run ours on a thread of its own.
    box: list[list[FetchResult]] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return box[0]


async def _fetch_all(
    requests: list[FetchRequest], settings: Settings, bucket: Bucket, cached: dict[str, tuple[str, str]]
) -> list[FetchResult]:
    fetcher = _Fetcher(settings, bucket)
    try:
        unique: dict[tuple[str, str], asyncio.Task[FetchResult]] = {}
        for request in requests:  # one fetch per distinct URL in the batch
            key = (request.url, request.media_type)
            if key not in unique:
                unique[key] = asyncio.ensure_future(fetcher.fetch(request, cached.get(request.url)))
        await asyncio.gather(*unique.values())
        results = []
        for request in requests:
            result = unique[(request.url, request.media_type)].result()
            results.append(replace(result, creative_id=request.creative_id))
        return results
    finally:
        await fetcher.aclose()


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
        self.allow = _Allowlist(settings.fetch_allowlist)

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
        try:
            async with asyncio.timeout(self.settings.fetch_total_timeout_s):
                data, content_type = await self._get(request, attempts)
            if not data:
                raise FetchError("empty", "zero bytes")
            if request.media_type == "image" and not looks_like_image(data):
                raise FetchError("not_an_image", f"content does not start like an image (type {content_type!r})")
            sha256, key = await asyncio.to_thread(self.bucket.put_blob, data)
            return replace(
                base,
                sha256=sha256,
                blob_key=key,
                content_type=content_type,
                size_bytes=len(data),
                attempts=attempts[0],
            )
        except FetchError as exc:
            return replace(base, status=exc.status, reason=exc.reason, attempts=attempts[0])
        except TimeoutError:
            total = self.settings.fetch_total_timeout_s
            return replace(base, status="timeout", reason=f"over the total time of {total:g}s", attempts=attempts[0])

    async def _get(self, request: FetchRequest, attempts: list[int]) -> tuple[bytes, str | None]:
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
            return await asyncio.to_thread(_read_fsspec, url, cap), None
        if scheme == "file" or (scheme == "" and url.strip()) or _is_windows_drive(scheme):
            if not self.settings.allow_local_paths:
                raise FetchError("bad_scheme", "local paths are not allowed (ADP_ALLOW_LOCAL_PATHS)")
            attempts[0] = 1
            path = unquote(parts.path) if scheme == "file" else url.strip()
            return await asyncio.to_thread(_read_local, path, cap), None
        raise FetchError("bad_scheme", f"scheme {scheme or '(none)'!r} is not allowed")

    async def _get_http(self, url: str, cap: int, attempts: list[int]) -> tuple[bytes, str | None]:
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

    async def _get_with_retries(self, target: _Target, cap: int, attempts: list[int]) -> tuple[bytes, str | None] | str:
        settings = self.settings
        for attempt in range(settings.fetch_max_retries + 1):
            attempts[0] += 1
            try:
                async with self._host_slot(target.host), self.slots:
                    return await self._get_once(target, cap)
            except _Retryable as exc:
                if attempt >= settings.fetch_max_retries:
                    raise FetchError(exc.status, f"{exc.reason} after {attempt + 1} attempts") from None
                delay = exc.delay if exc.delay is not None else settings.fetch_backoff_s * 2**attempt
                if delay > settings.fetch_max_retry_after_s:
                    raise FetchError("rate_limited", f"{exc.reason}; asked to wait {delay:g}s") from None
                await asyncio.sleep(delay * (1 + 0.1 * random.random()))
        raise AssertionError("unreachable")

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        if host not in self.host_slots:
            self.host_slots[host] = asyncio.Semaphore(self.settings.fetch_per_host)
        return self.host_slots[host]

    async def _get_once(self, target: _Target, cap: int) -> tuple[bytes, str | None] | str:
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
            body = bytearray()
            try:
                async for piece in response.aiter_raw():
                    body += piece
                    if len(body) > cap:
                        raise FetchError("too_large", f"body passed the cap of {cap} bytes")
            except httpx.TimeoutException as exc:
                raise _Retryable("timeout", f"{type(exc).__name__} while reading", None) from None
            except httpx.RemoteProtocolError as exc:
                raise _Retryable("truncated", f"body ended early: {exc}", None) from None
            except httpx.TransportError as exc:
                raise _Retryable("connection_error", f"{type(exc).__name__}: {exc}", None) from None
            content_type = response.headers.get("content-type")
            return bytes(body), content_type.split(";")[0].strip() if content_type else None
        finally:
            await response.aclose()


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
    literal = _parse_ip_literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("connection_error", f"cannot resolve {host}: {exc}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError("connection_error", f"{host} has no address")
    return addresses


def _parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP written in any spelling inet_aton accepts (decimal, hex, octal, short forms) or IPv6, else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part, 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def is_blocked_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for anything but a public unicast address, looking inside IPv6 forms that embed an IPv4 address."""
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None):
            if embedded is not None:
                candidates.append(embedded)
        if address in ipaddress.IPv6Network("64:ff9b::/96") or address in ipaddress.IPv6Network("::/96"):
            candidates.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return any(not a.is_global or a.is_multicast or a.is_reserved for a in candidates)


class _Allowlist:
    """``fetch_allowlist`` entries: ``host``, ``host:port``, an IP, ``ip:port``, or a CIDR."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.hosts: set[tuple[str, int | None]] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip().lower()
            if "/" in entry:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = entry, None
            if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
                host, _, port_text = entry.rpartition(":")
                port = int(port_text)
            self.hosts.add((host.strip("[]"), port))

    def host_allowed(self, host: str, port: int) -> bool:
        return (host, None) in self.hosts or (host, port) in self.hosts

    def address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        return self.host_allowed(str(address), port) or any(address in net for net in self.networks)


# --- other sources --------------------------------------------------------------------------------
def _read_local(path: str, cap: int) -> bytes:
    file = Path(path)
    try:
        if not file.is_file():
            raise FetchError("not_found", f"no file at {path}")
        if file.stat().st_size > cap:
            raise FetchError("too_large", f"{file.stat().st_size} bytes is over the cap of {cap}")
        with file.open("rb") as fh:
            return fh.read(cap + 1)
    except OSError as exc:
        raise FetchError("connection_error", f"{type(exc).__name__}: {exc}") from None


def _read_fsspec(url: str, cap: int) -> bytes:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
        if not fs.exists(path):
            raise FetchError("not_found", f"no object at {url}")
        size = fs.size(path)
        if size is not None and size > cap:
            raise FetchError("too_large", f"{size} bytes is over the cap of {cap}")
        with fs.open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except FetchError:
        raise
    except (OSError, ValueError) as exc:
        raise FetchError("connection_error", f"{type(exc).__name__}: {exc}") from None
    if len(data) > cap:
        raise FetchError("too_large", f"over the cap of {cap} bytes")
    return data


def _blob_size(bucket: Bucket, key: str) -> int | None:
    try:
        if not bucket.exists(key):
            return None
        return int(bucket.fs.size(bucket._path(key)))
    except (OSError, ValueError):
        return None


def _is_windows_drive(scheme: str) -> bool:
    return len(scheme) == 1 and scheme.isalpha()


def looks_like_image(data: bytes) -> bool:
    """A cheap sniff before storing: the allowed image formats' magic numbers (full decode comes later)."""
    return data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
