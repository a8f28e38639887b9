"""The safe fetcher against a real local server: every bad input ends as a status row, good rows are kept."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from adpipeline.bucket import Bucket
from adpipeline.media import fetch
from adpipeline.media.fetch import FetchRequest, fetch_all
from adpipeline.settings import Settings


def _one(url: str, settings: Settings, bucket: Bucket, media_type: str = "image") -> fetch.FetchResult:
    [result] = fetch_all([FetchRequest("c1", url, media_type)], settings, bucket)  # type: ignore[arg-type]
    return result


def test_ok_is_stored_content_addressed(server, settings, bucket) -> None:
    base, routes = server
    result = _one(f"{base}/ok", settings, bucket)
    assert result.status == "ok", result.reason
    assert result.sha256 == hashlib.sha256(routes.image).hexdigest()
    assert bucket.get_bytes(result.blob_key) == routes.image
    assert result.content_type == "image/jpeg" and result.size_bytes == len(routes.image)
    row = result.to_row()
    assert row.status == "fetched" and row.blob_path == result.blob_key and row.attempts == 1  # analysed later
    assert row.failure_kind is None


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/missing", "not_found"),
        ("/forbidden", "http_error"),
        ("/error", "http_error"),
        ("/html", "not_an_image"),
        ("/empty", "empty"),
        ("/huge", "too_large"),
        ("/endless", "too_large"),
        ("/loop-a", "redirect_loop"),
        ("/lying-big", "truncated"),
        ("/redirect-to/http://127.0.0.1:1/x", "blocked_address"),
        ("/redirect-to/http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("/redirect-to/http://10.0.0.1/", "blocked_address"),
        ("/redirect-to/http://metadata.google.internal/computeMetadata/v1/", "blocked_address"),
        ("/redirect-to/file:///etc/passwd", "bad_scheme"),
    ],
)
def test_bad_responses_become_status_rows(server, settings, bucket, path, status) -> None:
    base, _ = server
    result = _one(base + path, settings, bucket)
    assert result.status == status, result.reason
    assert result.sha256 is None and result.reason


def test_no_retry_on_4xx_and_retries_on_5xx(server, settings, bucket) -> None:
    base, routes = server
    assert _one(f"{base}/missing", settings, bucket).attempts == 1
    routes.hits.pop("/error", None)
    result = _one(f"{base}/error", settings, bucket)
    assert result.attempts == settings.fetch_max_retries + 1 == routes.hits["/error"]


def test_503_twice_then_200(server, settings, bucket) -> None:
    base, routes = server
    routes.hits.pop("/flaky", None)
    result = _one(f"{base}/flaky", settings, bucket)
    assert result.status == "ok" and result.attempts == 3


def test_429_retry_after_is_honoured(server, settings, bucket) -> None:
    base, routes = server
    routes.hits.pop("/ratelimited", None)
    started = time.monotonic()
    result = _one(f"{base}/ratelimited", settings, bucket)
    assert result.status == "ok" and result.attempts == 2
    assert time.monotonic() - started >= 0.95  # Retry-After: 1


def test_429_with_a_too_long_wait_stops(server, settings, bucket) -> None:
    base, routes = server
    routes.hits.pop("/ratelimited", None)
    short = settings.model_copy(update={"fetch_max_retry_after_s": 0.5})
    assert _one(f"{base}/ratelimited", short, bucket).status == "rate_limited"


def test_one_byte_per_second_hits_the_total_timeout(server, settings, bucket) -> None:
    base, _ = server
    quick = settings.model_copy(update={"fetch_total_timeout_s": 1.0})
    started = time.monotonic()
    result = _one(f"{base}/slow", quick, bucket)
    assert result.status == "timeout"
    assert time.monotonic() - started < 2.5


def test_content_length_that_understates_is_not_trusted(server, settings, bucket) -> None:
    """10 bytes declared, far more sent: only the declared frame is read, so the body is a 10-byte non-image."""
    base, _ = server
    result = _one(f"{base}/lying-small", settings, bucket)
    assert result.status in ("corrupt", "not_an_image", "ok")
    assert (result.size_bytes or 0) <= 10


def test_redirects_are_followed_and_rechecked(server, settings, bucket) -> None:
    base, _ = server
    assert _one(f"{base}/hop", settings, bucket).status == "ok"
    # a redirect to the same (allowed) server on another port is not allowed: the allow-list names host:port
    assert _one(f"{base}/redirect-to/http://127.0.0.1:9/ok", settings, bucket).status == "blocked_address"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("http://0x7f000001/", "blocked_address"),
        ("http://2130706433/", "blocked_address"),
        ("http://0177.0.0.1/", "blocked_address"),
        ("http://127.1/", "blocked_address"),
        ("http://[::1]:1/", "blocked_address"),
        ("http://[::ffff:127.0.0.1]/", "blocked_address"),
        ("http://[::ffff:a9fe:a9fe]/", "blocked_address"),
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("http://metadata.google.internal/", "blocked_address"),
        ("http://localhost:1/", "blocked_address"),
        ("http://10.0.0.1/", "blocked_address"),
        ("http://192.168.1.1/", "blocked_address"),
        ("http://[fd00::1]/", "blocked_address"),
        ("http://0.0.0.0/", "blocked_address"),
        ("ftp://example.com/a.jpg", "bad_scheme"),
        ("javascript:alert(1)", "bad_scheme"),
        ("data:image/png;base64,AAAA", "bad_scheme"),
        ("file:///etc/passwd", "bad_scheme"),
        ("/etc/passwd", "bad_scheme"),
        ("http://example.com/" + "a" * 5000, "bad_url"),
    ],
)
def test_refused_before_connecting(settings, bucket, url, status) -> None:
    result = _one(url, settings, bucket)
    assert result.status == status, result.reason


def test_blocked_address_spellings() -> None:
    parse = fetch._parse_ip_literal
    assert str(parse("0x7f000001")) == str(parse("2130706433")) == str(parse("0177.0.0.1")) == "127.0.0.1"
    assert str(parse("127.1")) == "127.0.0.1"
    assert parse("example.com") is None
    import ipaddress

    for text in ["127.0.0.1", "::1", "::ffff:10.0.0.1", "2002:a9fe:a9fe::1", "64:ff9b::a00:1", "fe80::1", "100.64.0.1"]:
        assert fetch.is_blocked_address(ipaddress.ip_address(text)), text
    assert not fetch.is_blocked_address(ipaddress.ip_address("8.8.8.8"))


def test_loopback_needs_the_allowlist(server, settings, bucket) -> None:
    base, _ = server
    closed = settings.model_copy(update={"fetch_allowlist": []})
    assert _one(f"{base}/ok", closed, bucket).status == "blocked_address"


def test_mixed_batch_keeps_order_and_good_rows(server, settings, bucket) -> None:
    base, _ = server
    urls = [f"{base}/ok?a", f"{base}/missing", "ftp://x/y", f"{base}/ok?b", f"{base}/html", f"{base}/ok?a"]
    requests = [FetchRequest(f"c{i}", url, "image") for i, url in enumerate(urls)]
    results = fetch_all(requests, settings, bucket)
    assert [r.creative_id for r in results] == [f"c{i}" for i in range(len(urls))]
    assert [r.status for r in results] == ["ok", "not_found", "bad_scheme", "ok", "not_an_image", "ok"]


def test_cached_urls_are_not_fetched_again(server, settings, bucket) -> None:
    base, routes = server
    first = _one(f"{base}/ok?cache", settings, bucket)
    hits = routes.hits["/ok"]
    cached = {first.url: (first.sha256, first.blob_key)}
    [again] = fetch_all([FetchRequest("c2", first.url, "image")], settings, bucket, cached=cached)
    assert again.status == "ok" and again.attempts == 0 and again.sha256 == first.sha256
    assert routes.hits["/ok"] == hits
    refresh = settings.model_copy(update={"refresh_media": True})
    fetch_all([FetchRequest("c2", first.url, "image")], refresh, bucket, cached=cached)
    assert routes.hits["/ok"] == hits + 1
    bucket.delete(first.blob_key)  # a cached blob that has gone is fetched again
    [back] = fetch_all([FetchRequest("c2", first.url, "image")], settings, bucket, cached=cached)
    assert back.attempts == 1 and bucket.exists(first.blob_key)


def test_local_paths_only_when_allowed(settings, bucket, tmp_path: Path) -> None:
    image = Path(__file__).parent / "fixtures" / "square.jpg"
    assert _one(str(image), settings, bucket).status == "bad_scheme"
    local = settings.model_copy(update={"allow_local_paths": True})
    assert _one(str(image), local, bucket).status == "ok"
    assert _one(image.as_uri(), local, bucket).status == "ok"
    assert _one(str(tmp_path / "missing.jpg"), local, bucket).status == "not_found"
