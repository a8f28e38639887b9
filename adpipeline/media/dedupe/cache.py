"""The finer check's cache: stored thumbnails and text by creative id, decoded and read on demand, decisions kept.

:class:`ThumbCache` decodes a thumbnail's coarse planes first and its detail planes only for a pair that passes the
coarse stage, keeps the ``size`` most recently used, remembers every pair decision, and reads (OCR) text only for
pairs the pixel stages confirm, in one batch per pass (:meth:`ThumbCache.prefetch_texts`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from adpipeline.media.dedupe.compare import align, coarse_score, content_key, detail_score
from adpipeline.media.dedupe.model import Clustering, Stored, TextReader, ThumbLoader
from adpipeline.media.dedupe.thumbnails import LAYOUT_MIN_CORRELATION, Thumb, inner_hash, layout_vector, load_thumb
from adpipeline.media.text import texts_differ


class ThumbCache:
    """Stored thumbnails by creative id, decoded on demand (coarse planes first, the detail planes only for a pair
    that passes the coarse stage) and kept for the ``size`` most recently used; confirmations are remembered."""

    def __init__(
        self, loader: ThumbLoader, clustering: Clustering, size: int, read_texts: TextReader | None = None
    ) -> None:
        self._loader = loader
        self._read_texts = read_texts
        self._texts: dict[str, str | None] = {}  # what was read during this pass (never read twice)
        self.text_reads = 0  # images whose text was read (OCR) during this pass (for the bench and the tests)
        self._pixel_confirmed: dict[tuple[str, str], bool] = {}  # pixel decisions (prefetch, then confirm)
        self._clustering = clustering
        self._size = max(2, size)
        self._raw: dict[str, Stored] = {}
        self._decoded: OrderedDict[str, Thumb | None] = OrderedDict()
        self._confirmed: dict[tuple[str, str], bool] = {}
        self._layouts: OrderedDict[str, np.ndarray | None] = OrderedDict()  # 1 KiB each, 16 x the thumbnails
        self.decoded = 0  # thumbnails decoded (for the bench)

    def add(self, raw: dict[str, Stored]) -> None:
        self._raw.update(raw)

    def load(self, ids: Sequence[str]) -> None:
        missing = [i for i in ids if i not in self._raw]
        if missing:
            loaded = self._loader(missing)
            self._raw.update({i: v if isinstance(v, Stored) else Stored(v) for i, v in loaded.items()})

    def inner_hashes(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:func:`inner_hash` of each (and whether there is one)."""
        inner = np.zeros(len(ids), np.uint64)
        present = np.zeros(len(ids), bool)
        for k, cid in enumerate(ids):
            value = inner_hash(self._raw.get(cid, _NOTHING).fine_thumb)
            if value is not None:
                inner[k], present[k] = value, True
        return inner, present

    def thumb(self, cid: str, *, detail: bool) -> Thumb | None:
        """The decoded thumbnail (``None`` without one); the detail planes (the costly part) only when asked for."""
        cached = self._decoded.get(cid, _MISSING)
        if cached is not _MISSING and (cached is None or cached.detail is not None or not detail):
            self._decoded.move_to_end(cid)
            return cached
        self.load([cid])
        raw = self._raw.get(cid, _NOTHING).fine_thumb
        thumb = load_thumb(raw, detail=detail) if raw else None
        self.decoded += 1
        self._decoded[cid] = thumb
        self._decoded.move_to_end(cid)
        if len(self._decoded) > self._size:
            self._decoded.popitem(last=False)
        return thumb

    def _layout(self, cid: str) -> np.ndarray | None:
        cached = self._layouts.get(cid, _MISSING_LAYOUT)
        if cached is _MISSING_LAYOUT:
            self.load([cid])
            cached = self._layouts[cid] = layout_vector(self._raw.get(cid, _NOTHING).fine_thumb)
            if len(self._layouts) > 16 * self._size:
                self._layouts.popitem(last=False)
        else:
            self._layouts.move_to_end(cid)
        return cached

    def confirm(self, a: str, b: str) -> bool:
        """Whether the finer check confirms the candidate pair (always, with the check off or without thumbnails):
        the coarse stage on the coarse planes, then the detail stage, then (for a pair the pixels confirm) the text."""
        detail = self._clustering.detail_threshold
        if detail is None:
            return True
        key = (a, b) if a < b else (b, a)
        known = self._confirmed.get(key)
        if known is None:
            known = self._confirmed[key] = self._check(*key, detail)
        return known

    def text(self, cid: str) -> str | None:
        """The image's text record: stored, else read now through the reader (once per image: what it read is
        kept here, and the reader stores it), else ``None`` (no reader, or it could not read: no text evidence)."""
        self.load([cid])
        stored = self._raw.get(cid, _NOTHING).ocr_text
        if stored is not None or self._read_texts is None:
            return stored
        if cid not in self._texts:
            self._texts[cid] = self._read_texts([cid]).get(cid)
            self.text_reads += 1
        return self._texts[cid]

    def prefetch_texts(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Read, in one call to the reader, the text of every image without stored text in a candidate pair the pixel
        stages confirm (the pairs :meth:`confirm` will ask about): the reader can spread one batch over the cores,
        where one image at a time leaves a core idle. Reads nothing the lazy path would not read."""
        detail = self._clustering.detail_threshold
        if self._read_texts is None or not self._clustering.text_check or detail is None:
            return
        wanted: dict[str, None] = {}
        for a, b in pairs:
            key = (a, b) if a < b else (b, a)
            if key in self._confirmed or not self._pixels(key, detail):
                continue
            for cid in key:
                self.load([cid])
                if self._raw.get(cid, _NOTHING).ocr_text is None and cid not in self._texts:
                    wanted[cid] = None
        if wanted:
            found = self._read_texts(list(wanted))
            for cid in wanted:
                self._texts[cid] = found.get(cid)
            self.text_reads += len(wanted)

    def _pixels(self, key: tuple[str, str], detail: float) -> bool:
        known = self._pixel_confirmed.get(key)
        if known is None:
            known = self._pixel_confirmed[key] = self._pixels_confirm(*key, detail)
        return known

    @property
    def texts_read(self) -> dict[str, str | None]:
        """Texts read during this pass, by creative id."""
        return dict(self._texts)

    def _check(self, a: str, b: str, detail: float) -> bool:
        """Pixels first: a pair the pixel stages reject is decided without any text. A pair they confirm is a copy or
        a template sibling whose change is too small for pixels (a price, a headline): only then is the text of both
        images read (:meth:`text`, lazily) and compared."""
        if not self._pixels((a, b), detail):
            return False
        if self._clustering.text_check and texts_differ(self.text(a), self.text(b)):
            return False  # a line in the same place says something else: another price, headline, offer, CTA
        return True

    def _pixels_confirm(self, a: str, b: str, detail: float) -> bool:
        layout_a, layout_b = self._layout(a), self._layout(b)
        if layout_a is not None and layout_b is not None and float(layout_a @ layout_b) < LAYOUT_MIN_CORRELATION:
            return False  # unrelated images that met by dHash: rejected before any decode or alignment
        first, second = self.thumb(a, detail=False), self.thumb(b, detail=False)
        if first is None or second is None:
            return True  # no thumbnail: the dHash candidate stands
        if content_key(second) < content_key(first):  # a fixed order by content: the check is symmetric
            (a, first), (b, second) = (b, second), (a, first)
        alignment = align(first.coarse, second.coarse)
        if coarse_score(first.coarse, second.coarse, alignment) > self._clustering.coarse_reject:
            return False
        first, second = self.thumb(a, detail=True), self.thumb(b, detail=True)
        assert first is not None and second is not None
        return detail_score(first, second, alignment) <= detail


_MISSING = Thumb(np.empty(0))  # sentinels: not in the cache
_MISSING_LAYOUT = np.empty(0)
_NOTHING = Stored(None)
