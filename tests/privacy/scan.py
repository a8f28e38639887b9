"""Find a person's traces anywhere: every table (every column, stringified; vectors compared as numbers), every bucket
object (names, sha256 of the bytes, ids and vector bytes inside), and the raw DuckDB file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adpipeline.bucket import Bucket
from adpipeline.settings import Settings
from adpipeline.warehouse import get_warehouse


@dataclass
class Traces:
    """What identifies one person's data: ids, sha256 of their crops/photos, their vectors."""

    ids: set[str] = field(default_factory=set)
    blob_hashes: set[str] = field(default_factory=set)
    vectors: list[np.ndarray] = field(default_factory=list)

    def merge(self, other: Traces) -> Traces:
        return Traces(self.ids | other.ids, self.blob_hashes | other.blob_hashes, self.vectors + other.vectors)


def face_traces(settings: Settings, face_id: str) -> Traces:
    """A unique face's ids (face, tracks), crop hashes and vectors (centroid, embeddings), read before deletion."""
    bucket = Bucket(settings.resolved_bucket_url)
    with get_warehouse(settings) as wh:
        face = wh.query("SELECT * FROM {{ faces }} WHERE face_id = @f", {"f": face_id})
        tracks = wh.query("SELECT * FROM {{ face_detections }} WHERE face_id = @f", {"f": face_id})
    assert len(face) == 1 and len(tracks) >= 1
    traces = Traces(ids={face_id, *tracks["track_id"]})
    traces.vectors.append(np.asarray(face.iloc[0]["centroid"], dtype=np.float64))
    traces.vectors += [np.asarray(e, dtype=np.float64) for e in tracks["embedding"]]
    for track_id in tracks["track_id"]:
        key = f"faces/crops/{track_id}.jpg"
        if bucket.exists(key):
            traces.blob_hashes.add(hashlib.sha256(bucket.get_bytes(key)).hexdigest())
    assert traces.blob_hashes, "the face has crops in the bucket"
    return traces


def table_names(wh) -> list[str]:
    """Every table in the warehouse (not only the known ones)."""
    with wh.session() as con:
        return sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())


def _vector_patterns(vectors: list[np.ndarray]) -> list[bytes]:
    out = []
    for v in vectors:
        for dtype in ("<f4", "<f8"):
            raw = np.asarray(v).astype(dtype).tobytes()
            out.append(raw[: 16 * np.dtype(dtype).itemsize])  # 16 components: no accidental match
    return out


def _close_to_any(value: object, vectors: list[np.ndarray]) -> bool:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if arr.ndim != 1 or arr.size < 8:
        return False
    return any(v.shape == arr.shape and np.allclose(v, arr, atol=1e-5) for v in vectors)


def _hits(needles: list[str], text: str) -> list[str]:
    # A track id ``X_t1`` must not match ``X_t10``.
    return [n for n in needles if n in text and re.search(re.escape(n) + r"(?![0-9a-f])", text)]


def scan(settings: Settings, traces: Traces, *, raw_file: bool = True) -> list[str]:
    """Every place any trace is found ("table.column: id", "bucket key: ...", "duckdb file: ...")."""
    found: list[str] = []
    needles = sorted(traces.ids | traces.blob_hashes)
    with get_warehouse(settings) as wh:
        tables = table_names(wh)
        for table in tables:
            frame = wh.read_table(table)
            for column in frame.columns:
                for value in frame[column]:
                    if _close_to_any(value, traces.vectors):
                        found.append(f"{table}.{column}: a forgotten vector")
                        continue
                    text = str(list(value)) if isinstance(value, np.ndarray) else str(value)
                    found += [f"{table}.{column}: {n}" for n in _hits(needles, text)]
    bucket = Bucket(settings.resolved_bucket_url)
    patterns = _vector_patterns(traces.vectors)
    for key in bucket.list():
        found += [f"bucket key {key}: {n}" for n in _hits(sorted(traces.ids), key)]
        data = bucket.get_bytes(key)
        if hashlib.sha256(data).hexdigest() in traces.blob_hashes:
            found.append(f"bucket {key}: a forgotten crop/photo")
        text = data.decode("latin-1")
        found += [f"bucket {key}: id {n}" for n in _hits(sorted(traces.ids), text)]
        found += [f"bucket {key}: vector bytes" for p in patterns if p in data]
    if raw_file and settings.warehouse_backend == "duckdb":
        path = Path(settings.resolved_duckdb_path)
        data = path.read_bytes()
        found += [f"duckdb file: {n}" for n in _hits(needles, data.decode("latin-1"))]
        found += ["duckdb file: vector bytes" for p in patterns if p in data]
    return found
