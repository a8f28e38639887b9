"""Media fetching: which URLs may be read, how many at once, timeouts, retries and back-off, size and pixel caps."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from adpipeline.settings.base import Domain


class FetchSettings(Domain):
    """The safe fetcher (adpipeline/media/fetch.py) and the size limits every decoder of media applies."""

    title = "Media fetch and size limits"
    readme = "adpipeline/media/README.md"

    allow_local_paths: bool = False
    """Allow local file paths / file:// as media URLs (the demo sets it; keep false in production)."""
    fetch_allowlist: list[str] = Field(default_factory=list, description="Hosts/CIDRs exempt from the address block.")
    fetch_concurrency: int = Field(16, ge=1, le=256)
    """Media fetches in flight per task (bodies stream to disk: ~64 KiB of memory each, temp disk up to N x cap)."""
    fetch_per_host: int = Field(4, ge=1, le=64)
    """Media fetches in flight per host."""
    fetch_connect_timeout_s: float = Field(5.0, gt=0)
    """Connect timeout per request, seconds."""
    fetch_read_timeout_s: float = Field(15.0, gt=0)
    """Read timeout (between bytes), seconds."""
    fetch_total_timeout_s: float = Field(60.0, gt=0)
    """Total time allowed for one fetch including retries, seconds."""
    fetch_max_retries: int = Field(3, ge=0, le=10)
    """Retries on 429 / 5xx / connection errors (never on other 4xx)."""
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    """Redirects followed (each one re-checked against the address block)."""
    max_image_bytes: int = Field(25 * 2**20, gt=0)
    """Largest image accepted, bytes (enforced while streaming)."""
    max_video_bytes: int = Field(256 * 2**20, gt=0)
    """Largest video accepted, bytes (enforced while streaming; 16 at the cap need 4 GiB of temp disk, not memory)."""
    # Pillow refuses more than twice its own MAX_IMAGE_PIXELS (178,956,970) whatever this says.
    max_image_pixels: int = Field(50_000_000, gt=0, le=178_956_970)
    """Largest decoded image, pixels (decompression-bomb guard; ~150 MB of RGB at the default)."""
    refresh_media: bool = False
    """Fetch every creative of the run's window again, whatever its status, back-off or cached bytes."""
    fetch_backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles per attempt, with jitter.")
    fetch_max_retry_after_s: float = Field(
        30.0, ge=0, description="Longest Retry-After honoured; a longer one ends the fetch as rate_limited."
    )
    local_media_roots: list[Path] = Field(
        default_factory=list,
        description="Folders that local paths and file:// media URLs must lie under (symlinks resolved), when "
        "allow_local_paths is on; empty: <home>/sample (where `adpipeline demo` writes).",
    )
    fetch_retry_transient_s: float = Field(
        900.0,
        ge=0,
        description="A transient fetch failure (timeout, 5xx, 429, connection error, body cut short) is fetched "
        "again by the first run after this wait; the wait doubles with each failed run in a row.",
    )
    fetch_retry_permanent_s: float = Field(
        7 * 86400.0,
        ge=0,
        description="A permanent failure (blocked address, 404/410, too large, not an image, unsupported format, "
        "undecodable bytes) is fetched again only after this wait, doubling per failed run; refresh_media retries "
        "the window at once.",
    )
    fetch_retry_max_s: float = Field(30 * 86400.0, ge=0, description="Longest wait before a failed fetch is retried.")
