"""The bucket: media bytes, face crops and exports through fsspec (a local folder, or ``gs://`` in production)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import fsspec

from adpipeline.google_auth import DEFAULT_GCP_CONN_ID, google_credentials

if TYPE_CHECKING:
    from adpipeline.settings import Settings

# gcsfs probes for hierarchical-namespace buckets over gRPC and stalls about a minute per bucket when that endpoint is
# unreachable (emulators, locked-down networks); the flag must be set before gcsfs is imported.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


class Bucket:
    """Keys are ``/``-separated paths under the bucket root URL.

    On ``gs://``, credentials come from the Airflow connection ``gcp_conn_id`` when one can be read, else gcsfs
    finds Application Default Credentials itself (:mod:`adpipeline.google_auth`); a ``token`` storage option wins.
    """

    def __init__(self, url: str, *, gcp_conn_id: str | None = DEFAULT_GCP_CONN_ID, **storage_options: object) -> None:
        self.url = url.rstrip("/")
        if self.url.startswith(("gs://", "gcs://")) and "token" not in storage_options:
            found = google_credentials(gcp_conn_id)
            if found.credentials is not None:
                storage_options = {"token": found.credentials, **storage_options}
                if found.project:
                    storage_options.setdefault("project", found.project)
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **storage_options)
        self.root = self.root.rstrip("/")
        if "file" in _protocols(self.fs):
            self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def for_settings(cls, settings: Settings) -> Bucket:
        """The configured bucket, with the configured Google connection."""
        return cls(settings.resolved_bucket_url, gcp_conn_id=settings.gcp_conn_id or None)

    def _path(self, key: str) -> str:
        key = key.lstrip("/")
        if ".." in key.split("/"):
            raise ValueError(f"bad bucket key {key!r}")
        return f"{self.root}/{key}"

    def uri(self, key: str) -> str:
        """The full URL of a key (for a reader outside adpipeline; tables store the key itself)."""
        return f"{self.url}/{key.lstrip('/')}"

    def key_of(self, ref: object) -> str | None:
        """The key a stored object reference names: a key (what tables store: relative, ``/``-separated), or a full
        URL or path under this bucket (rows written before keys were stored). None for anything else (another bucket,
        an absolute path elsewhere, ``..``), so a reference never reaches outside the bucket."""
        if not isinstance(ref, str) or not ref:
            return None
        if ref.startswith(self.url + "/"):
            ref = ref[len(self.url) + 1 :]
        elif "://" in ref or ref.startswith("/"):
            return None
        if ".." in ref.split("/") or ref.startswith("/"):
            return None
        return ref

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def put_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        parent = path.rsplit("/", 1)[0]
        if "file" in _protocols(self.fs):
            self.fs.makedirs(parent, exist_ok=True)
        with self.fs.open(path, "wb") as fh:
            fh.write(data)
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        with self.fs.open(self._path(key), "rb") as fh:
            return fh.read()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)
            return True
        return False

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not self.fs.exists(base):
            return
        for path in sorted(self.fs.find(base)):
            yield path[len(self.root) + 1 :]

    def local_path(self, key: str) -> str | None:
        """A filesystem path for libraries that need one (PyAV, OpenCV), when the bucket is local."""
        return self._path(key) if "file" in _protocols(self.fs) else None

    @contextmanager
    def local_file(self, key: str) -> Generator[str, None, None]:
        """A filesystem path to the object for libraries that need one: the file itself on a local bucket, else a
        temporary copy removed on exit."""
        local = self.local_path(key)
        if local is not None:
            yield local
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / key.rsplit("/", 1)[-1]
            self.fs.get_file(self._path(key), str(path))  # streamed: never the whole object in memory
            yield str(path)

    # content-addressed media
    @staticmethod
    def blob_key(sha256: str) -> str:
        return f"blobs/sha256/{sha256[:2]}/{sha256}"

    @contextmanager
    def blob_writer(self) -> Generator[BlobWriter, None, None]:
        """Stream bytes into the content-addressed store: write pieces, then ``commit()`` for (sha256, key). The
        bytes go to a temporary file as they come (hashed on the way), never all into memory; whatever is not
        committed (an error, a refused body) is removed on exit."""
        writer = BlobWriter(self)
        try:
            yield writer
        finally:
            writer.discard()

    def remove_stale_uploads(self, max_age_s: float = 86400.0) -> int:
        """Delete temporary uploads older than ``max_age_s`` (left by a killed worker) on a local bucket; how many."""
        folder = self.local_path("tmp/uploads")
        if folder is None or not os.path.isdir(folder):
            return 0
        removed = 0
        cutoff = time.time() - max_age_s
        for entry in os.scandir(folder):
            with suppress(FileNotFoundError):
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    os.remove(entry.path)
                    removed += 1
        return removed

    def put_blob(self, data: bytes) -> tuple[str, str]:
        """Store bytes once under their sha256; return (sha256, key)."""
        digest = hashlib.sha256(data).hexdigest()
        key = self.blob_key(digest)
        if not self.exists(key):
            self.put_bytes(key, data)
        return digest, key


class BlobWriter:
    """One body on its way into the bucket (see :meth:`Bucket.blob_writer`).

    On a local bucket the temporary file lives under ``<root>/tmp/uploads`` (same filesystem), so ``commit`` is a
    rename; on a remote bucket it lives in the system temp folder and is uploaded from disk (fsspec ``put_file``).
    """

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.size = 0
        self.head = b""  # the first bytes, for sniffing a format
        self._digest = hashlib.sha256()
        local = bucket.local_path("tmp/uploads")
        if local is not None:
            os.makedirs(local, exist_ok=True)
        fd, self._temp = tempfile.mkstemp(prefix="upload-", dir=local)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._local = local is not None

    def write(self, data: bytes) -> None:
        if self._file is None:
            raise ValueError("blob writer is closed")
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        self._file.write(data)
        self._digest.update(data)
        self.size += len(data)

    def commit(self) -> tuple[str, str]:
        """Move the bytes to ``blobs/sha256/xx/<sha256>`` (kept as they are if that key exists); (sha256, key)."""
        if self._file is None:
            raise ValueError("blob writer is closed")
        self._file.close()
        self._file = None
        digest = self._digest.hexdigest()
        key = self.bucket.blob_key(digest)
        try:
            if not self.bucket.exists(key):
                target = self.bucket._path(key)
                if self._local:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    os.replace(self._temp, target)
                else:
                    self.bucket.fs.put_file(self._temp, target)
        finally:
            self.discard()
        return digest, key

    def discard(self) -> None:
        """Drop whatever was written and not committed (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        with suppress(FileNotFoundError):
            os.remove(self._temp)


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
