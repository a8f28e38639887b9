"""Near-duplicate groups: multi-index hashing over 64-bit dHashes finds candidates, a finer check confirms them.

Grouping is a pure function of the *set* of images (their contents): candidate pairs (:mod:`.candidates`) are within
``threshold`` bits on the image dHash or on the thumbnail dHash (:mod:`adpipeline.media.hamming`, no all-pairs
scan), or say the same tallest text line and are within ``text_candidate_bits`` (a crop in a frame moves a copy's
hashes); the finer check (:mod:`.cache`) confirms a candidate when the images' aligned thumbnails (:mod:`.thumbnails`)
differ no more than a copy does (:mod:`.compare`: the coarse stage on the 64-px planes as a fast reject, then the
detail stage on the 128-px planes, normalised by local contrast) and their text does not tell them apart
(:mod:`adpipeline.media.text`: a line in the same place that says something else is another price, headline, offer
or call to action). Components of confirmed pairs are split into groups by average linkage (:mod:`.grouping`); the
canonical of a group is its largest image, then the smallest sha256 (:func:`rank_key`), so URL strings and arrival
order never move a group. :func:`regroup` adds pending images to an index of earlier ones (incremental);
:func:`group_duplicates` groups a whole set at once. Media README, "Near-duplicates".

Modules: ``model`` (inputs, settings, index, loaders), ``thumbnails`` (the stored thumbnail format), ``compare``
(registration, coarse and detail stages), ``candidates`` (candidate pairs), ``cache`` (decoded thumbnails, decisions
and text reads of one pass), ``grouping`` (components, average linkage, rows).
"""

from __future__ import annotations

from adpipeline.media.dedupe.compare import coarse_difference, detail_difference, pair_difference
from adpipeline.media.dedupe.grouping import group_duplicates, regroup
from adpipeline.media.dedupe.model import (
    COARSE_REJECT,
    DEFAULT_DETAIL_THRESHOLD,
    DEFAULT_LINK_SHARE,
    DEFAULT_TEXT_CANDIDATE_BITS,
    DEFAULT_TEXT_KEY_MAX_IMAGES,
    DEFAULT_THRESHOLD,
    MASK64,
    Clustering,
    HashedImage,
    Known,
    Member,
    MemberLoader,
    Stored,
    TextReader,
    ThumbLoader,
    rank_key,
    signed64,
)
from adpipeline.media.dedupe.thumbnails import (
    LAYOUT_MIN_CORRELATION,
    THUMB_FORMAT,
    OldThumbFormat,
    Thumb,
    inner_hash,
    layout_vector,
    load_thumb,
    thumb_format,
)
from adpipeline.media.hamming import all_pairs_baseline, find_pairs, hamming

__all__ = [
    "COARSE_REJECT",
    "DEFAULT_DETAIL_THRESHOLD",
    "DEFAULT_LINK_SHARE",
    "DEFAULT_TEXT_CANDIDATE_BITS",
    "DEFAULT_TEXT_KEY_MAX_IMAGES",
    "DEFAULT_THRESHOLD",
    "LAYOUT_MIN_CORRELATION",
    "MASK64",
    "THUMB_FORMAT",
    "Clustering",
    "HashedImage",
    "Known",
    "Member",
    "MemberLoader",
    "OldThumbFormat",
    "Stored",
    "TextReader",
    "Thumb",
    "ThumbLoader",
    "all_pairs_baseline",
    "coarse_difference",
    "detail_difference",
    "find_pairs",
    "group_duplicates",
    "hamming",
    "inner_hash",
    "layout_vector",
    "load_thumb",
    "pair_difference",
    "rank_key",
    "regroup",
    "signed64",
    "thumb_format",
]
