"""Grouping: confirmed candidate pairs become components, components are split into groups.

:func:`regroup` adds pending images to the index of earlier ones (incremental); :func:`group_duplicates` groups a
whole set at once. Components of confirmed pairs come from ``scipy.sparse.csgraph.connected_components``; inside one,
average linkage over its confirmed pairs makes the groups (:func:`_average_linkage`), star clustering above
``_MAX_LINKAGE`` images. The canonical of a group is its best-ranked image (:func:`~.model.rank_key`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import numpy as np

from adpipeline import tables
from adpipeline.media.dedupe.cache import ThumbCache
from adpipeline.media.dedupe.candidates import Hashes, find_candidates, text_pairs, unique_rows
from adpipeline.media.dedupe.model import (
    COARSE_REJECT,
    DEFAULT_DETAIL_THRESHOLD,
    DEFAULT_LINK_SHARE,
    DEFAULT_TEXT_CANDIDATE_BITS,
    DEFAULT_THRESHOLD,
    MASK64,
    Clustering,
    HashedImage,
    Known,
    MemberLoader,
    Stored,
    TextReader,
    ThumbLoader,
    rank_key,
    signed64,
)
from adpipeline.media.hamming import find_pairs, hamming


def group_duplicates(
    images: Sequence[HashedImage],
    threshold: int = DEFAULT_THRESHOLD,
    *,
    detail_threshold: float | None = DEFAULT_DETAIL_THRESHOLD,
    coarse_reject: float = COARSE_REJECT,
    link_share: float | None = DEFAULT_LINK_SHARE,
    text_check: bool = True,
    text_candidate_bits: int = DEFAULT_TEXT_CANDIDATE_BITS,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    """One :class:`~adpipeline.tables.DuplicateGroup` row per distinct creative (singletons are groups of one) for a
    whole set at once: :func:`regroup` with nothing known before. Rows come sorted by ``(group_id, creative_id)``.
    ``read_texts`` reads the text of images without a stored ``ocr_text`` when a pair needs it (:func:`regroup`)."""
    thumbs = {image.creative_id: Stored(image.fine_thumb, image.ocr_text) for image in images}
    rows = regroup(
        images,
        Known.empty(),
        Clustering(
            threshold,
            detail_threshold,
            coarse_reject,
            link_share,
            text_check=text_check,
            text_candidate_bits=text_candidate_bits,
        ),
        load_thumbs=lambda ids: {i: thumbs[i] for i in ids},
        read_texts=read_texts,
    )
    return sorted(rows, key=lambda row: (row.group_id, row.creative_id))


def regroup(
    pending: Sequence[HashedImage],
    known: Known,
    clustering: Clustering,
    *,
    load_thumbs: ThumbLoader,
    load_members: MemberLoader | None = None,
    cache_size: int = 256,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    """Group ``pending`` images into the ``known`` index; return the rows that are new or changed (pending images
    and the earlier members of the components they join whose row moves). Every other row stands as it is.

    Groups are a function of the set of images (their contents), whatever order or run they come in:
    1. Candidates: pairs within ``threshold`` bits on the image dHash or on the thumbnail dHash (taken inside any
       frame), and pairs whose tallest text line reads the same (:func:`~adpipeline.media.text.text_key`) within
       ``text_candidate_bits`` on either hash. Pending images probe each other and the index (:func:`find_candidates`);
       nothing earlier is compared with anything earlier again.
    2. The finer check confirms a candidate (thumbnails loaded and decoded for candidates alone, ``cache_size``
       decoded at a time); exact copies (same bytes, so the same thumbnail) always confirm. Text is read only for a
       pair the pixel stages confirm (a copy, or a sibling too close for pixels), and only for images without a
       stored ``ocr_text``: ``read_texts`` reads (OCR) and stores it, once per image; images in no such pair are
       never read. Without ``read_texts``, an image without stored text gives no text evidence.
    3. Components of confirmed pairs (scipy's ``connected_components``) only ever merge as images arrive, so each row
       keeps its ``component_id`` and a pending image joins the components of the earlier images it is confirmed
       against.
    4. Inside every touched component, average linkage over its confirmed pairs (:func:`_cluster_rows`); the
       canonical of each group is its best-ranked image (:func:`rank_key`).
    Daily runs therefore end with the same rows as one run over all days, as long as the settings stay the same.
    """
    with _one_blas_thread():
        return _regroup(pending, known, clustering, load_thumbs, load_members, cache_size, read_texts)


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """BLAS threads on 64- and 128-px matrices cost far more than they bring (measured 20x slower on a busy 2-core
    worker): one thread while grouping, where threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _regroup(
    pending: Sequence[HashedImage],
    known: Known,
    clustering: Clustering,
    load_thumbs: ThumbLoader,
    load_members: MemberLoader | None,
    cache_size: int,
    read_texts: TextReader | None = None,
) -> list[tables.DuplicateGroup]:
    pending = _distinct(pending)
    if not pending:
        return []
    thumbs = ThumbCache(load_thumbs, clustering, cache_size, read_texts)
    thumbs.add({image.creative_id: Stored(image.fine_thumb, image.ocr_text) for image in pending})
    n = len(pending)
    ids = [image.creative_id for image in pending]
    inner, has_inner = thumbs.inner_hashes(ids)
    unit, keys, has_key, new_pairs, old_pairs = find_candidates(pending, inner, has_inner, known, clustering)
    thumbs.load(known.creative_ids[np.unique(old_pairs[:, 1])].tolist())
    # The text the confirmations will need, read in one batch (the reader spreads it over the cores).
    thumbs.prefetch_texts(
        [(ids[i], ids[j]) for i, j in new_pairs.tolist()]
        + [(ids[i], str(known.creative_ids[k])) for i, k in old_pairs.tolist()]
    )
    new_ok = np.array([thumbs.confirm(ids[i], ids[j]) for i, j in new_pairs.tolist()], bool)
    old_ok = np.array([thumbs.confirm(ids[i], str(known.creative_ids[k])) for i, k in old_pairs.tolist()], bool)
    # Components over the pending images and the earlier components they are confirmed against (only these regroup;
    # a candidate component that no pending image joined keeps its rows as they are). Byte-identical images are one.
    earlier = sorted({str(c) for c in known.component_ids[old_pairs[old_ok, 1]]}) if len(old_pairs) else []
    node_of = {component: n + c for c, component in enumerate(earlier)}
    confirmed_old = old_pairs[old_ok]
    edges = np.concatenate(
        [
            new_pairs[new_ok].reshape(-1, 2),
            np.stack(
                [confirmed_old[:, 0], [node_of[str(c)] for c in known.component_ids[confirmed_old[:, 1]]]], axis=1
            ).reshape(-1, 2),
            np.stack([np.arange(n), unit], axis=1),
        ]
    ).astype(np.int64)
    label = _components(n + len(earlier), edges)

    # Every touched component: its pending images and all its earlier members, clustered again.
    clusters: dict[object, list[HashedImage]] = {}
    for k, image in enumerate(pending):
        clusters.setdefault(int(label[k]), []).append(image)
    old_rows: dict[str, tables.DuplicateGroup] = {}
    inner_of = {ids[k]: int(inner[k]) for k in range(n) if has_inner[k]}
    key_of = {ids[k]: int(keys[k]) for k in range(n) if has_key[k]}
    if earlier:
        if load_members is None:
            raise ValueError("regroup needs load_members when pending images join earlier components")
        for member in load_members(earlier):
            if member.image.creative_id in inner_of or member.row.component_id is None:
                continue  # pending again (re-analysed): its new facts count
            old_rows[member.image.creative_id] = member.row
            if member.row.inner_dhash is not None:
                inner_of[member.image.creative_id] = member.row.inner_dhash & MASK64
            if member.row.text_key is not None and clustering.text_route:
                key_of[member.image.creative_id] = member.row.text_key
            component = member.row.component_id
            clusters.setdefault(int(label[node_of[component]]) if component in node_of else component, []).append(
                member.image
            )
    rows: list[tables.DuplicateGroup] = []
    for members in clusters.values():
        for row in _cluster_rows(members, clustering, thumbs, inner_of, key_of):
            if old_rows.get(row.creative_id) != row:
                rows.append(row)
    return rows


def _distinct(images: Sequence[HashedImage]) -> list[HashedImage]:
    """One image per creative id (the smallest content key wins), in rank order."""
    by_id: dict[str, HashedImage] = {}
    for image in images:
        known = by_id.get(image.creative_id)
        if known is None or _tiebreak(image) < _tiebreak(known):
            by_id[image.creative_id] = image
    return sorted(by_id.values(), key=rank_key)


def _tiebreak(image: HashedImage) -> tuple[str, int, str, int, int]:
    return (image.sha256, image.dhash, image.fine_thumb or "", image.width, image.height)


def _cluster_rows(
    members: list[HashedImage],
    clustering: Clustering,
    thumbs: ThumbCache,
    inner_of: dict[str, int],
    key_of: dict[str, int],
) -> list[tables.DuplicateGroup]:
    """The groups of one component of confirmed pairs, as rows: average linkage over its confirmed pairs (exact copies
    start together; two groups merge while the share of their cross pairs that are confirmed is at least
    ``link_share``, highest share first), or star clustering for a component over ``_MAX_LINKAGE`` images. The
    canonical of a group is its best-ranked image (:func:`rank_key`)."""
    members = sorted(members, key=rank_key)
    n = len(members)
    ids = [image.creative_id for image in members]
    leader = np.arange(n)
    if n > 1:
        dhash = np.fromiter((image.dhash & MASK64 for image in members), np.uint64, n)
        use_inner = clustering.detail_threshold is not None
        in_component = Hashes(
            dhash,
            np.fromiter((inner_of.get(i, 0) for i in ids), np.uint64, n),
            np.array([use_inner and i in inner_of for i in ids], bool),
            np.fromiter((key_of.get(i, 0) for i in ids), np.int64, n),
            np.array([i in key_of for i in ids], bool),
        )
        with_inner = np.flatnonzero(in_component.has_inner)
        # In a small component the finer check decides every pair within twice the threshold (a copy of a copy may
        # be far from the other copies in dHash; pairs further apart than that are unrelated images).
        wide = min(2 * clustering.threshold, 64) if n <= clustering.all_pairs_within else clustering.threshold
        everyone = np.arange(n)
        pairs = unique_rows(
            [
                find_pairs(dhash, wide),
                with_inner[find_pairs(in_component.inner[with_inner], wide)],
                text_pairs(in_component, everyone, in_component, everyone, clustering),
            ]
        ).tolist()
        first_with: dict[str, int] = {}
        exact = [(first_with.setdefault(image.sha256, k), k) for k, image in enumerate(members)]
        exact = [(i, j) for i, j in exact if i != j]
        if clustering.link_share is not None and n <= _MAX_LINKAGE:
            leader = _average_linkage(n, pairs, exact, lambda i, j: thumbs.confirm(ids[i], ids[j]), clustering)
        else:
            leader = _star(n, pairs, exact, lambda i, j: thumbs.confirm(ids[i], ids[j]))
    size = np.bincount(leader, minlength=n)
    component_id = f"k_{ids[0]}"
    dhash_all = np.fromiter((image.dhash & MASK64 for image in members), np.uint64, n)
    distance = hamming(dhash_all, dhash_all[leader])
    return [
        tables.DuplicateGroup(
            creative_id=image.creative_id,
            group_id=f"g_{ids[leader[k]]}",
            canonical_creative_id=ids[leader[k]],
            hamming_to_canonical=int(distance[k]),
            is_canonical=bool(leader[k] == k),
            group_size=int(size[leader[k]]),
            component_id=component_id,
            sha256=image.sha256,
            inner_dhash=signed64(inner_of[image.creative_id]) if image.creative_id in inner_of else None,
            text_key=key_of.get(image.creative_id),
        )
        for k, image in enumerate(members)
    ]


_MAX_LINKAGE = 1500  # images in one component clustered by average linkage (above: star clustering)


def _average_linkage(
    n: int,
    pairs: list[list[int]],
    exact: list[tuple[int, int]],
    confirm: Callable[[int, int], bool],
    clustering: Clustering,
) -> np.ndarray:
    """Each image's group leader (its best-ranked member; images are in rank order) by average linkage."""
    linked = np.zeros((n, n))
    for i, j in pairs:
        if confirm(i, j):
            linked[i, j] = linked[j, i] = 1.0
    label = np.arange(n)
    for i, j in exact:  # byte-identical images are one
        label[label == label[j]] = label[i]
    _, label = np.unique(label, return_inverse=True)
    k = int(label.max()) + 1
    membership = np.zeros((k, n))
    membership[label, np.arange(n)] = 1.0
    links = membership @ linked @ membership.T
    sizes = membership.sum(axis=1)
    alive = np.ones(k, bool)
    while True:
        share = links / np.outer(sizes, sizes)
        share[~alive] = -1.0
        share[:, ~alive] = -1.0
        np.fill_diagonal(share, -1.0)
        a, b = divmod(int(share.argmax()), k)  # the first (lowest-ranked leaders) of the highest shares
        if share[a, b] < clustering.link_share:
            break
        a, b = min(a, b), max(a, b)
        links[a] += links[b]
        links[:, a] += links[:, b]
        links[a, a] = 0.0
        sizes[a] += sizes[b]
        alive[b] = False
        label[label == b] = a
    leader = np.full(k, n)
    np.minimum.at(leader, label, np.arange(n))
    return leader[label]


def _star(
    n: int, pairs: list[list[int]], exact: list[tuple[int, int]], confirm: Callable[[int, int], bool]
) -> np.ndarray:
    """Star clustering in rank order: each image joins the best-ranked canonical it is confirmed against."""
    leader = np.arange(n)
    neighbours: dict[int, set[int]] = {}
    for i, j in [*pairs, *exact]:  # i < j: i ranks first
        neighbours.setdefault(j, set()).add(i)
    same = set(exact)
    for j in range(1, n):
        for i in sorted(neighbours.get(j, ())):
            if leader[i] == i and ((i, j) in same or confirm(i, j)):
                leader[j] = i
                break
    return leader


def _components(nodes: int, edges: np.ndarray) -> np.ndarray:
    """Connected component label of each of ``nodes`` nodes joined by ``edges`` (rows ``(i, j)``)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(edges), np.int8), (edges[:, 0], edges[:, 1])), shape=(nodes, nodes))
    return connected_components(graph, directed=False)[1]
