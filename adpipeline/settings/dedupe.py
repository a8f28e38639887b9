"""Near-duplicate grouping: candidate pairs by dHash (and by a shared text line), the pixel and text checks that
confirm them, and how confirmed pairs merge into groups (adpipeline/media/README.md explains each step)."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class DedupeSettings(Domain):
    """Thresholds of the near-duplicate grouping of images (the dedupe code in adpipeline/media/)."""

    title = "Near-duplicate grouping"
    readme = "adpipeline/media/README.md"

    dhash_threshold: int = Field(
        12, ge=0, le=32, description="dHash Hamming distance (image or thumbnail hash) that makes a candidate pair."
    )
    # Renamed from fine_diff_threshold (grey levels) when its unit changed, so an old value fails loudly.
    duplicate_detail_threshold: float = Field(
        2.0,
        ge=0,
        le=10,
        description="Largest aligned 8x8-block 128-px thumbnail difference, in units of local contrast, that confirms "
        "a pair (media README).",
    )
    duplicate_fine_check: bool = Field(
        True,
        description="Confirm dHash candidates with the finer thumbnail check; false groups by dHash alone "
        "(media README).",
    )
    duplicate_text_check: bool = Field(
        True,
        description="Keep apart candidate pairs whose lines in the same place say different things (another price, "
        "headline, offer or call to action); an image's text is read (OCR, about 0.4 s on one core) only when a pair "
        "the pixel check confirms needs it, once; off only with duplicate_fine_check on (media README).",
    )
    duplicate_text_candidate_bits: int = Field(
        20,
        ge=0,
        le=64,
        description="dHash distance in bits (image or thumbnail hash) within which two images whose tallest text line "
        "reads the same are candidate duplicates too (a crop plus a frame moves a copy further than dhash_threshold); "
        "at or below dhash_threshold turns this route off; needs duplicate_text_check (media README).",
    )
    duplicate_text_key_max_images: int = Field(
        1000,
        ge=0,
        description="Images (grouped and pending) that may share one tallest text line for it still to make candidate "
        "pairs; a line more say (a brand name, a call to action) is too common to count (media README).",
    )
    duplicate_coarse_reject: float = Field(
        48.0,
        ge=0,
        le=255,
        description="Largest aligned 4x4-block 64-px thumbnail difference, in grey levels, a candidate pair may have "
        "before the detail check runs (a fast reject).",
    )
    duplicate_link_share: float = Field(
        0.35,
        gt=0,
        le=1,
        description="Share (0-1) of confirmed pairs between two groups of one component of confirmed pairs that "
        "merges them (average linkage; media README).",
    )
    duplicate_all_pairs_within: int = Field(
        64,
        ge=0,
        le=1500,
        description="Components of confirmed pairs up to this many images have every pair within twice dhash_threshold "
        "checked by the finer check, not only the candidates (more recall, more checks; 0: candidates only).",
    )
    dedupe_batch_size: int = Field(
        20_000,
        gt=0,
        description="Pending images grouped per pass (each pass reads the index once and MERGEs its rows).",
    )
