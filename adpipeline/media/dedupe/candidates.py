"""Candidate pairs: which images the finer check compares (no all-pairs scan).

Pairs within ``threshold`` bits on the image dHash or on the thumbnail dHash (:mod:`adpipeline.media.hamming`,
multi-index hashing), and pairs whose tallest text line reads the same (:func:`~adpipeline.media.text.text_key`)
within ``text_candidate_bits`` on either hash (:func:`text_pairs`). Pending images probe each other and the index of
earlier images (:func:`find_candidates`); earlier images are never compared with each other again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from adpipeline.media.dedupe.model import MASK64, Clustering, HashedImage, Known
from adpipeline.media.hamming import find_pairs, find_pairs_between, hamming
from adpipeline.media.text import text_key


class Candidates(NamedTuple):
    """The candidate pairs of one pass over ``pending`` (indices into it, images in rank order)."""

    unit: np.ndarray  # per pending image: the first pending image with the same bytes (byte-identical images are one)
    keys: np.ndarray  # int64 text keys of the pending images, valid where has_key (stored with their rows)
    has_key: np.ndarray  # bool
    new_pairs: np.ndarray  # (i, j), i < j: pending images among themselves
    old_pairs: np.ndarray  # (i, k): pending image i and known.creative_ids[k]


def find_candidates(
    pending: Sequence[HashedImage], inner: np.ndarray, has_inner: np.ndarray, known: Known, clustering: Clustering
) -> Candidates:
    """Candidate pairs of ``pending`` (distinct, in rank order; ``inner``/``has_inner``: their thumbnail dHashes)
    among themselves and against the ``known`` index. Byte-identical pending images probe once (their first)."""
    n = len(pending)
    dhash = np.fromiter((image.dhash & MASK64 for image in pending), np.uint64, n)
    first_of: dict[str, int] = {}
    unit = np.fromiter((first_of.setdefault(image.sha256, k) for k, image in enumerate(pending)), np.int64, n)
    firsts = np.unique(unit)
    use_inner = clustering.detail_threshold is not None  # dHash alone: the image hash only
    firsts_inner = firsts[has_inner[firsts] & use_inner]
    keys = np.zeros(n, np.int64)
    has_key = np.zeros(n, bool)
    if clustering.text_route:
        for k, image in enumerate(pending):
            value = text_key(image.ocr_text)
            if value is not None:
                keys[k], has_key[k] = value, True
    known_keys = known.text_keys if known.text_keys is not None else np.zeros(len(known.dhash), np.int64)
    known_has_key = known.has_text_key if known.has_text_key is not None else np.zeros(len(known.dhash), bool)
    probe_key = has_key.copy()  # keys stored with the rows; probe_key: those that make candidates
    if has_key.any():  # keys too common to count (said by more than text_key_max_images images) make no candidates
        said = np.concatenate([keys[has_key], known_keys[known_has_key & np.isin(known_keys, keys[has_key])]])
        values, counts = np.unique(said, return_counts=True)
        common = values[counts > clustering.text_key_max_images]
        probe_key &= ~np.isin(keys, common)
        known_has_key = known_has_key & ~np.isin(known_keys, common)
    pending_hashes = Hashes(dhash, inner, has_inner & use_inner, keys, probe_key)
    known_hashes = Hashes(known.dhash, known.inner, known.has_inner & use_inner, known_keys, known_has_key)
    new_pairs = unique_rows(
        [
            firsts[find_pairs(dhash[firsts], clustering.threshold)],
            firsts_inner[find_pairs(inner[firsts_inner], clustering.threshold)],
            text_pairs(pending_hashes, firsts, pending_hashes, firsts, clustering),
        ]
    )
    on_dhash = find_pairs_between(dhash[firsts], known.dhash, clustering.threshold)
    known_inner = np.flatnonzero(known.has_inner & use_inner)
    on_inner = find_pairs_between(inner[firsts_inner], known.inner[known_inner], clustering.threshold)
    old_pairs = unique_rows(
        [
            np.stack([firsts[on_dhash[:, 0]], on_dhash[:, 1]], axis=1),
            np.stack([firsts_inner[on_inner[:, 0]], known_inner[on_inner[:, 1]]], axis=1),
            text_pairs(pending_hashes, firsts, known_hashes, np.arange(len(known.dhash)), clustering),
        ]
    )
    return Candidates(unit, keys, has_key, new_pairs, old_pairs)


def unique_rows(parts: list[np.ndarray]) -> np.ndarray:
    """The distinct ``(i, j)`` rows of all parts, sorted."""
    pairs = np.concatenate([p.reshape(-1, 2) for p in parts]).astype(np.int64)
    return np.unique(pairs, axis=0) if len(pairs) else pairs


class Hashes(NamedTuple):
    """What candidate search reads of a list of images: both dHashes and the text key, with their masks."""

    dhash: np.ndarray  # uint64
    inner: np.ndarray  # uint64, valid where has_inner
    has_inner: np.ndarray  # bool
    keys: np.ndarray  # int64 text keys, valid where has_key
    has_key: np.ndarray  # bool


_TEXT_PAIR_CHUNK = 2_000_000  # same-key pairs held at once (a headline shared by many images is read in slices)


def text_pairs(
    queries: Hashes, query_rows: np.ndarray, index: Hashes, index_rows: np.ndarray, clustering: Clustering
) -> np.ndarray:
    """Pairs ``(q, i)`` of ``query_rows`` x ``index_rows`` with the same text key and within
    ``clustering.text_candidate_bits`` on the image dHash or on the thumbnail dHash (where both have one). When both
    sides are the same list (pending images among themselves, one component), only ``q < i``. Exact: every such pair,
    found by sorting the index's keys and walking each query's run of equal keys, a slice of queries at a time."""
    if not clustering.text_route:
        return np.empty((0, 2), np.int64)
    same = queries is index
    q_rows = query_rows[queries.has_key[query_rows]]
    i_rows = index_rows[index.has_key[index_rows]]
    if not len(q_rows) or not len(i_rows):
        return np.empty((0, 2), np.int64)
    order = np.argsort(index.keys[i_rows], kind="stable")
    sorted_rows, sorted_keys = i_rows[order], index.keys[i_rows][order]
    q_keys = queries.keys[q_rows]
    lo = np.searchsorted(sorted_keys, q_keys, "left")
    counts = np.searchsorted(sorted_keys, q_keys, "right") - lo
    bits = clustering.text_candidate_bits
    found = []
    start = 0
    while start < len(q_rows):  # slices of queries holding at most _TEXT_PAIR_CHUNK candidate pairs
        total = np.cumsum(counts[start:])
        stop = start + max(1, int(np.searchsorted(total, _TEXT_PAIR_CHUNK, "right")))
        c = counts[start:stop]
        q = np.repeat(q_rows[start:stop], c)
        offset = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        i = sorted_rows[np.repeat(lo[start:stop], c) + offset]
        near = hamming(queries.dhash[q], index.dhash[i]) <= bits
        both_inner = queries.has_inner[q] & index.has_inner[i]
        near |= both_inner & (hamming(queries.inner[q], index.inner[i]) <= bits)
        if same:
            near &= q < i
        found.append(np.stack([q[near], i[near]], axis=1))
        start = stop
    return np.concatenate(found).astype(np.int64)
