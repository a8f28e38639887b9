"""The bucket: media bytes, face crops and exports through fsspec (a local folder, or ``gs://`` in production)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

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
        """The full URL of a key (what tables store)."""
        return f"{self.url}/{key.lstrip('/')}"

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
            path.write_bytes(self.get_bytes(key))
            yield str(path)

    # content-addressed media
    @staticmethod
    def blob_key(sha256: str) -> str:
        return f"blobs/sha256/{sha256[:2]}/{sha256}"

    def put_blob(self, data: bytes) -> tuple[str, str]:
        """Store bytes once under their sha256; return (sha256, key)."""
        digest = hashlib.sha256(data).hexdigest()
        key = self.blob_key(digest)
        if not self.exists(key):
            self.put_bytes(key, data)
        return digest, key


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)
