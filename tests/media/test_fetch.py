"""The safe fetcher against a real local server: every bad input ends as a status row, good rows are kept."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from adpipeline.bucket import Bucket
from adpipeline.media import addresses, fetch
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
        ("file:///etc/passwd", "bad_scheme"),  # local paths are off by default
        ("/etc/passwd", "bad_scheme"),
        ("http://example.com/" + "a" * 5000, "bad_url"),
    ],
)
def test_refused_before_connecting(settings, bucket, url, status) -> None:
    result = _one(url, settings, bucket)
    assert result.status == status, result.reason


def test_blocked_address_spellings() -> None:
    parse = addresses.parse_ip_literal
    assert str(parse("0x7f000001")) == str(parse("2130706433")) == str(parse("0177.0.0.1")) == "127.0.0.1"
    assert str(parse("127.1")) == "127.0.0.1"
    assert parse("example.com") is None
    import ipaddress

    for text in ["127.0.0.1", "::1", "::ffff:10.0.0.1", "2002:a9fe:a9fe::1", "64:ff9b::a00:1", "fe80::1", "100.64.0.1"]:
        assert addresses.is_blocked_address(ipaddress.ip_address(text)), text
    assert not addresses.is_blocked_address(ipaddress.ip_address("8.8.8.8"))


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


def test_local_paths_only_when_allowed_and_under_the_roots(settings, bucket, tmp_path: Path) -> None:
    image = Path(__file__).parent / "fixtures" / "square.jpg"
    assert _one(str(image), settings, bucket).status == "bad_scheme"
    local = settings.model_copy(update={"allow_local_paths": True, "local_media_roots": [image.parent]})
    assert _one(str(image), local, bucket).status == "ok"
    assert _one(image.as_uri(), local, bucket).status == "ok"
    assert _one(str(image.parent / "missing.jpg"), local, bucket).status == "not_found"
    for outside in (
        "file:///etc/passwd",
        "/etc/passwd",
        str(tmp_path / "missing.jpg"),
        f"{image.parent}/../conftest.py",
    ):
        result = _one(outside, local, bucket, "video")
        assert result.status == "blocked_path", outside
        assert "outside the local media roots" in (result.reason or "") and str(image.parent) in (result.reason or "")


def test_local_roots_default_to_the_sample_folder(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home")  # type: ignore[call-arg]
    assert settings.resolved_local_media_roots == [(tmp_path / "home" / "sample").resolve()]


@pytest.mark.parametrize(
    ("path", "status", "transient"),
    [
        ("/missing", "not_found", False),
        ("/forbidden", "http_error", False),
        ("/html", "not_an_image", False),
        ("/huge", "too_large", False),
        ("/redirect-to/http://10.0.0.1/", "blocked_address", False),
        ("/loop-a", "redirect_loop", False),
        ("/error", "http_error", True),
        ("/lying-big", "truncated", True),
        ("/slow", "timeout", True),
    ],
)
def test_failures_are_transient_or_permanent(server, settings, bucket, path, status, transient) -> None:
    base, _ = server
    quick = settings.model_copy(update={"fetch_total_timeout_s": 1.0})
    result = _one(base + path, quick, bucket)
    assert (result.status, result.transient) == (status, transient)
    assert result.to_row().failure_kind == ("transient" if transient else "permanent")


def test_retry_waits_double_per_failed_run_up_to_the_cap(settings) -> None:
    wait = fetch.next_attempt_delay_s
    s = settings.model_copy(update={"fetch_retry_transient_s": 900.0, "fetch_retry_permanent_s": 86400.0})
    assert [wait("transient", n, s) for n in (1, 2, 3)] == [900.0, 1800.0, 3600.0]
    assert wait("permanent", 1, s) == 86400.0 and wait("permanent", 50, s) == s.fetch_retry_max_s


def test_tiff_is_an_unsupported_format_not_a_non_image(server, settings, bucket) -> None:
    base, routes = server
    routes.blobs["tiff"] = b"MM\x00*" + b"\x00" * 100
    result = _one(f"{base}/blob/tiff", settings, bucket)
    assert result.status == "unsupported_format" and "TIFF" in (result.reason or "")


def test_failed_bodies_leave_nothing_in_the_bucket(server, settings, bucket) -> None:
    base, _ = server
    quick = settings.model_copy(update={"fetch_total_timeout_s": 1.0})
    urls = ["/endless", "/huge", "/html", "/lying-big", "/slow", "/empty"]
    results = fetch_all([FetchRequest(f"c{i}", base + u, "image") for i, u in enumerate(urls)], quick, bucket)
    assert all(not r.ok for r in results), [r.status for r in results]
    assert list(bucket.list()) == []  # no blob, no temporary upload


def test_a_body_streams_with_one_chunk_in_memory(server, settings, bucket) -> None:
    """A 24 MiB video reaches the bucket while Python holds a few hundred KiB at most (it held the body twice)."""
    import tracemalloc

    base, routes = server
    routes.blobs["big-video"] = bytes(range(256)) * (24 * 2**12)
    roomy = settings.model_copy(update={"max_video_bytes": 64 * 2**20, "fetch_total_timeout_s": 30.0})
    tracemalloc.start()
    try:
        result = _one(f"{base}/blob/big-video", roomy, bucket, "video")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "ok" and result.size_bytes == 24 * 2**20
    assert result.sha256 == hashlib.sha256(routes.blobs["big-video"]).hexdigest()
    assert peak < 4 * 2**20, peak


def test_fetch_iter_yields_as_fetches_end(server, settings, bucket) -> None:
    base, _ = server
    quick = settings.model_copy(update={"fetch_total_timeout_s": 2.0})
    requests = [FetchRequest("slow", f"{base}/slow?iter", "image"), FetchRequest("fast", f"{base}/ok?iter", "image")]
    order = [r.creative_id for r in fetch.fetch_iter(requests, quick, bucket)]
    assert order == ["fast", "slow"]
    started = time.monotonic()
    for _ in fetch.fetch_iter(requests, quick, bucket):
        break  # leaving early cancels the slow one
    assert time.monotonic() - started < 1.5


def test_a_remote_bucket_gets_the_body_from_a_temporary_file(server, settings) -> None:
    """A non-local bucket (fsspec memory://) receives the body with put_file; the temporary file is removed."""
    import uuid

    base, routes = server
    remote = Bucket(f"memory://adp-{uuid.uuid4().hex}")
    result = _one(f"{base}/ok?remote", settings, remote)
    assert result.status == "ok" and remote.get_bytes(result.blob_key) == routes.image
    assert list(remote.list()) == [result.blob_key]


def test_stale_temporary_uploads_are_removed(bucket) -> None:
    import os

    with bucket.blob_writer() as fresh:
        fresh.write(b"in flight")
        folder = Path(bucket.local_path("tmp/uploads") or "")
        old = folder / "upload-left-by-a-killed-worker"
        old.write_bytes(b"x")
        os.utime(old, (0, 0))
        assert bucket.remove_stale_uploads() == 1
        assert not old.exists() and len(list(folder.iterdir())) == 1  # the upload in flight is untouched
    assert list(folder.iterdir()) == []  # not committed: removed on exit
