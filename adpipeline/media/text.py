"""Whether two images say the same, for the near-duplicate check: their stored OCR records compared line by line.

Template siblings (another price, headline, offer or call to action) differ from each other in a few glyphs, which
at thumbnail size are as small as recompression noise; their text tells them apart at once. The record is what
:func:`adpipeline.text_reader.read_text` reads (the one text reader, shared with the offline extractor): each line's
text, confidence and box (shares of the image's width and height) as compact JSON; it is stored with the image's
hashes (``image_hashes.ocr_text``) and read back only for candidate pairs.

:func:`texts_differ` compares two such records: lines are paired by place (boxes overlapping after allowing the shift
a crop or frame makes); a pair whose texts differ (any digit, or more letters than OCR noise changes) is evidence of
two creatives. Lines on one side only (a badge, a watermark, a line OCR missed) are not: adding is what copies do.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import NamedTuple

import numpy as np

__all__ = [
    "TextLine",
    "parse_text",
    "text_key",
    "texts_differ",
]

MIN_CONFIDENCE = 0.6  # OCR lines below this confidence are left out (stray glyphs, faint watermarks)
_SHIFT = 0.08  # share of a side a line may move between copies (crop up to 6 % and a frame) before it is unpaired
_SCALE_RANGE = (0.85, 1.18)  # row scale a crop of up to 6 % plus a frame, either way round, can make
_HEIGHT_RATIO = 2.0  # lines in the same place whose heights differ more are different elements (a badge, a line)
_MIN_CHARS = 2  # lines shorter than this (after normalising) say too little to compare


class TextLine(NamedTuple):
    text: str  # normalised: lower case letters, digits, and currency / percent signs; no spaces
    confidence: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the image's width and height


_KEEP = re.compile(r"[^0-9a-z$%€£¥]+")


def normalise(text: str) -> str:
    """Lower case, letters / digits / currency and percent signs only (OCR reads spacing unreliably)."""
    return _KEEP.sub("", text.lower())


def parse_text(record: str | None) -> tuple[TextLine, ...] | None:
    """The lines of a stored record worth comparing (confident, not trivially short); ``None`` without a record."""
    return None if record is None else _parse(record)


@lru_cache(maxsize=4096)
def _parse(record: str) -> tuple[TextLine, ...]:
    """A record that is not what :func:`adpipeline.text_reader.read_text` writes (a hand-edited or truncated cell)
    reads as no text: no evidence either way, never a failed grouping run."""
    lines = []
    try:
        for text, confidence, x0, y0, x1, y1 in json.loads(record):
            norm = normalise(str(text))
            if float(confidence) >= MIN_CONFIDENCE and len(norm) >= _MIN_CHARS:
                lines.append(TextLine(norm, float(confidence), (float(x0), float(y0), float(x1), float(y1))))
    except (ValueError, TypeError):
        return ()
    return tuple(lines)


def _paired(a: TextLine, b: TextLine, rows: tuple[float, float]) -> bool:
    """Whether two lines sit in the same place: similar height (a font size), overlapping columns and, once ``a``'s
    rows are mapped by ``rows`` (scale, shift: what a crop or frame did, from the lines both read the same),
    overlapping rows by half a line."""
    scale, shift = rows
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    ay0, ay1 = ay0 * scale + shift, ay1 * scale + shift
    ha, hb = ay1 - ay0, by1 - by0
    if min(ha, hb) <= 0 or max(ha, hb) > _HEIGHT_RATIO * min(ha, hb):
        return False
    vertical = min(ay1, by1) - max(ay0, by0)
    return vertical >= 0.5 * min(ha, hb) and min(ax1, bx1) - max(ax0, bx0) > 0


# Letters OCR reads as digits and back: compared as the digit so such a slip is not taken for another number.
_CONFUSABLE = str.maketrans({"o": "0", "l": "1", "i": "1", "s": "5", "b": "8", "t": "7", "z": "2", "g": "9"})


_KEY_CHARS = 4  # a tallest line shorter than this (compared form) is too common to key on


def text_key(record: str | None) -> int | None:
    """A 63-bit key of what an image says most loudly: its tallest confident line in the compared form (letters OCR
    reads as digits taken as the digits), hashed; ``None`` without text or when that line is under four characters.

    Copies keep their headline or price (a crop, a frame, a badge or a brightness change move its pixels, not its
    words), so images that share the key are candidates for the finer check even when their dHashes are far apart.
    Deterministic across processes and versions of Python (blake2b, not ``hash``)."""
    lines = parse_text(record)
    if not lines:
        return None
    tallest = max(lines, key=lambda line: (line.box[3] - line.box[1], line.text))
    key = tallest.text.translate(_CONFUSABLE)
    if len(key) < _KEY_CHARS:
        return None
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


def lines_differ(a: str, b: str) -> bool:
    """Whether two normalised lines in the same place say different things.

    Characters are aligned with letters OCR confuses with digits taken as those digits (``t``/``7``, ``o``/``0``...),
    so such a slip is no edit. A real digit replaced by another digit or by a letter that does not look like it (the
    changed digit misread on one side), or a digit added or dropped inside the line, is another number (a price, an
    offer), however long the line; other edits are OCR noise up to one per five characters (at least one); a line
    cut at the image edge (a crop) reads as a prefix or a suffix.
    """
    ca, cb = a.translate(_CONFUSABLE), b.translate(_CONFUSABLE)
    if ca == cb:
        return False
    (short, _), (long, _) = sorted(((ca, a), (cb, b)), key=lambda pair: len(pair[0]))
    if len(short) >= 4 and (long.startswith(short) or long.endswith(short)):
        return False  # a line cut at the image edge (a crop of a line that runs to the edge), digits included
    digit_edits, other_edits = _edits(ca, cb, a, b)
    return digit_edits > 0 or other_edits > max(1, len(long) // 5)


# Letters OCR also reads for a digit other than the one _CONFUSABLE maps them to (a "3" read as "B", a "6" as "G"):
# against that digit such a letter is a misread, not another number.
_ALSO_LOOKS_LIKE = {"b": "36", "g": "6", "q": "9", "a": "4", "d": "0", "j": "1", "e": "3"}


def _number_substitution(x: str, y: str) -> bool:
    """Whether replacing ``x`` by ``y`` (raw characters whose compared forms differ) changes a number: a real digit on
    one side against another digit, or against a letter that does not look like it. Such a letter is the changed
    digit misread (``$14.99`` read ``$1A.99`` against ``$19.99``, ``50%`` read ``S0%`` against ``30%``): counted as
    letter noise, a one-character price change in a long line would pass. A letter that looks like the digit
    (``B``/``3``) is a misread of the same number; a digit against a currency or percent sign is OCR's usual slip on
    those signs (``$5`` read ``55``)."""
    if x.isdigit() and y.isdigit():
        return True
    digit, letter = (x, y) if x.isdigit() else (y, x)
    return digit.isdigit() and letter.isalpha() and digit not in _ALSO_LOOKS_LIKE.get(letter, "")


def _edits(a: str, b: str, raw_a: str, raw_b: str) -> tuple[int, int]:
    """Levenshtein alignment of the compared forms ``a`` and ``b``: (digit edits, other edits). A digit edit is a real
    digit (in ``raw_a`` / ``raw_b``) replaced by another real digit, or one added or dropped between two aligned
    characters (not at either end). A real digit on one side against a letter that does not look like it counts as
    a digit edit too (:func:`_number_substitution`): the changed characters decide, not the line's noise allowance."""
    n, m = len(a), len(b)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1, cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    digit_edits = other_edits = 0
    i, j = n, m
    while i > 0 or j > 0:
        inside = 0 < i < n or 0 < j < m
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            if a[i - 1] != b[j - 1]:
                if _number_substitution(raw_a[i - 1], raw_b[j - 1]):
                    digit_edits += 1
                else:
                    other_edits += 1
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            real = raw_a[i - 1].isdigit() and inside
            digit_edits, other_edits = digit_edits + real, other_edits + (not real)
            i -= 1
        else:
            real = raw_b[j - 1].isdigit() and inside
            digit_edits, other_edits = digit_edits + real, other_edits + (not real)
            j -= 1
    return digit_edits, other_edits


def _row_map(first: tuple[TextLine, ...], second: tuple[TextLine, ...]) -> tuple[float, float]:
    """How rows of ``first`` map onto ``second`` (``y2 = scale * y1 + shift``): a crop, a frame and a rescale move
    every line by a linear function of its row. Fitted on the centres of lines that read the same in both (least
    squares when they span a tenth of the height or more, scale held to what a 6 % crop and a frame do; else the
    median move; else none)."""
    matches = [
        ((a.box[1] + a.box[3]) / 2, (b.box[1] + b.box[3]) / 2)
        for a in first
        for b in second
        if a.text == b.text and abs(a.box[1] - b.box[1]) <= _SHIFT
    ]
    if not matches:
        return 1.0, 0.0
    ys = np.array(matches)
    if len(ys) >= 2 and np.ptp(ys[:, 0]) >= 0.1:
        scale, shift = np.polyfit(ys[:, 0], ys[:, 1], 1)
        if _SCALE_RANGE[0] <= scale <= _SCALE_RANGE[1]:
            return float(scale), float(shift)
    return 1.0, float(np.median(ys[:, 1] - ys[:, 0]))


def texts_differ(a: str | None, b: str | None) -> bool:
    """Whether the text of two images shows they are different creatives: a row of text in the same place that says
    something else. Lines are linked when they sit in the same place (:func:`_paired`); each linked set (OCR may
    read one line as two pieces in one image and whole in the other) is compared as its pieces joined left to right.
    Symmetric. ``False`` when either has no record: no text evidence either way."""
    if a is None or b is None:
        return False
    if b < a:
        a, b = b, a  # one direction for the row map, whatever the argument order: the answer is symmetric
    first, second = parse_text(a), parse_text(b)
    if not first or not second:
        return False
    rows = _row_map(first, second)
    n = len(first)
    parent = list(range(n + len(second)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    linked: set[int] = set()
    for i, line in enumerate(first):
        for j, other in enumerate(second):
            if _paired(line, other, rows):
                parent[find(i)] = find(n + j)
                linked.update((i, n + j))
    sets: dict[int, list[int]] = {}
    for k in sorted(linked):
        sets.setdefault(find(k), []).append(k)
    for members in sets.values():
        left = "".join(first[k].text for k in sorted((k for k in members if k < n), key=lambda k: first[k].box[0]))
        right = "".join(
            second[k - n].text for k in sorted((k for k in members if k >= n), key=lambda k: second[k - n].box[0])
        )
        if lines_differ(left, right):
            return True
    return False
