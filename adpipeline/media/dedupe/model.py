"""What the grouping takes and gives: images, settings, the index of earlier images, and the loaders it calls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from adpipeline import tables

# Defaults chosen on the tuning part of the varied labelled set (bench/dedupe_quality.py; media README): with the text
# check keeping text siblings apart, the pixel stages only need to catch product colour, layout and unrelated images.
DEFAULT_THRESHOLD = 12  # dHash bits (image or thumbnail hash) that make a candidate pair
DEFAULT_DETAIL_THRESHOLD = 2.0  # detail_difference limit (units of local contrast)
DEFAULT_LINK_SHARE = 0.35  # share of confirmed cross pairs that merges two groups of one component
DEFAULT_TEXT_CANDIDATE_BITS = 20  # dHash bits within which images with the same text key are candidates too
DEFAULT_TEXT_KEY_MAX_IMAGES = 1000  # images saying one text key above which it makes no candidates
COARSE_REJECT = 48.0  # coarse_difference above this (grey levels) rejects a pair before the detail stage


class HashedImage(NamedTuple):
    """One image as the grouping sees it. ``dhash`` may be the signed INT64 from the table or the unsigned value."""

    creative_id: str
    sha256: str
    dhash: int
    first_seen: dt.date | None = None  # not used by the grouping (content decides); kept for callers
    fine_thumb: str | None = None  # ImageHash.fine_thumb (the finer check's thumbnail); without it: dHash alone
    width: int = 0  # pixels; the largest image of a group is its canonical (rank_key)
    height: int = 0
    ocr_text: str | None = None  # ImageHash.ocr_text; without it the text check has no evidence for the pair


class Clustering(NamedTuple):
    """What shapes groups (from settings, in one place). ``threshold``: dHash Hamming distance (bits) that makes a
    candidate pair; ``detail_threshold``: the detail stage's limit (``compare.detail_difference``, units of local
    contrast), ``None`` turns the whole finer check off (dHash alone); ``coarse_reject``: the coarse stage's limit
    (``compare.coarse_difference``, grey levels) a pair must pass before the detail stage; ``link_share``: the share
    (0-1) of confirmed pairs between two groups of one component that merges them; ``all_pairs_within``: components
    up to this many images have every pair within twice the threshold checked (a copy of a copy may be far from the
    other copies in dHash), larger ones only their candidate pairs; ``text_candidate_bits``: images with the same
    text key (their tallest line) are candidates within this many bits on either dHash (a crop plus a frame moves a
    copy's hashes further than ``threshold``); ``threshold`` or less turns that route off; ``text_key_max_images``: a
    key more images than this say (grouped and pending together) is too common to make candidates (a brand name or a
    call to action as the tallest line)."""

    threshold: int = DEFAULT_THRESHOLD
    detail_threshold: float | None = DEFAULT_DETAIL_THRESHOLD
    coarse_reject: float = COARSE_REJECT
    link_share: float | None = DEFAULT_LINK_SHARE  # None: star clustering (the bench compares the two)
    all_pairs_within: int = 64  # components up to this size check every pair of members, not only dHash candidates
    text_check: bool = True  # keep apart pairs whose text differs (media.text.texts_differ); needs detail_threshold
    text_candidate_bits: int = DEFAULT_TEXT_CANDIDATE_BITS  # same text key (media.text.text_key) and this close
    text_key_max_images: int = DEFAULT_TEXT_KEY_MAX_IMAGES  # a key said by more images is too common to count

    @property
    def text_route(self) -> bool:
        """Whether images sharing a text key are candidates beyond ``threshold`` (needs the text check)."""
        return self.text_check and self.detail_threshold is not None and self.text_candidate_bits > self.threshold


class Stored(NamedTuple):
    """What the finer check reads for one candidate image: its thumbnail and its text (either may be missing)."""

    fine_thumb: str | None
    ocr_text: str | None = None


class Known(NamedTuple):
    """The index of earlier grouped images, one entry each (``duplicate_groups`` joined to ``image_hashes``). ``inner``
    is the thumbnail dHash (``thumbnails.inner_hash``), valid where ``has_inner``."""

    creative_ids: np.ndarray  # object (str)
    dhash: np.ndarray  # uint64
    inner: np.ndarray  # uint64
    has_inner: np.ndarray  # bool
    component_ids: np.ndarray  # object (str)
    text_keys: np.ndarray | None = None  # int64 (media.text.text_key), valid where has_text_key; None: no text keys
    has_text_key: np.ndarray | None = None  # bool

    @classmethod
    def empty(cls) -> Known:
        return cls(
            np.empty(0, object), np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, bool), np.empty(0, object)
        )


class Member(NamedTuple):
    """An earlier image of a component a pending image joins: its facts (no thumbnail needed) and its current row."""

    image: HashedImage
    row: tables.DuplicateGroup


# creative ids -> Stored (or the fine_thumb alone, for callers without text)
ThumbLoader = Callable[[Sequence[str]], "dict[str, Stored] | dict[str, str | None]"]
MemberLoader = Callable[[Sequence[str]], list[Member]]  # component ids -> all their members
# creative ids -> their text record (media.text.read_text), read now (OCR) and stored by the caller; None: unreadable
TextReader = Callable[[Sequence[str]], "dict[str, str | None]"]


def rank_key(image: HashedImage) -> tuple[int, str, str]:
    """The canonical order: the largest image (pixels) first, then the sha256, then (only between byte-identical
    copies) the creative id. Content decides, so URL strings and input order never move a group or its canonical."""
    return (-(image.width * image.height), image.sha256, image.creative_id)


MASK64 = 0xFFFF_FFFF_FFFF_FFFF  # a dHash as unsigned: value & MASK64


def signed64(value: int) -> int:
    """An unsigned 64-bit value as the signed INT64 the tables store."""
    return value - (1 << 64) if value >= 1 << 63 else value
