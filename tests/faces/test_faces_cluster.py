"""Incremental unique faces: nearest-within-threshold, deterministic ids, batch == one run, full re-cluster."""

from __future__ import annotations

import numpy as np

from adpipeline.faces.cluster import KnownFace, NewTrack, assign_faces, face_id_for, recluster


def _people(n_people: int = 5, per_person: int = 8, dim: int = 128, noise: float = 0.08, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    tracks, truth = [], {}
    for k in range(per_person):
        for p in range(n_people):
            v = centres[p] + rng.normal(scale=noise / np.sqrt(dim), size=dim)
            v /= np.linalg.norm(v)
            day = f"2026-10-{1 + k:02d}"
            tid = f"c{p}_{k}_t0"
            tracks.append(
                NewTrack(
                    tid,
                    f"c{p}_{k}",
                    v.astype(np.float32),
                    quality=float(rng.uniform()),
                    order_key=(day, f"c{p}_{k}", tid),
                )
            )
            truth[tid] = p
    return tracks, truth


def test_one_face_per_person_and_ids_from_founding_track():
    tracks, truth = _people()
    result = assign_faces([], tracks, threshold=0.4)
    by_person: dict[int, set[str]] = {}
    for tid, face_id in result.face_of.items():
        by_person.setdefault(truth[tid], set()).add(face_id)
    assert all(len(ids) == 1 for ids in by_person.values())
    assert len(result.faces) == 5 == len(result.new_face_ids)
    founders = {t.track_id for t in tracks if t.order_key[0] == "2026-10-01"}
    assert set(result.new_face_ids) == {face_id_for(t) for t in founders}
    assert all(f.face_id.startswith("f_") and len(f.face_id) == 14 for f in result.faces)
    face = result.faces[0]
    members = [t for t in tracks if result.face_of[t.track_id] == face.face_id]
    assert face.n_tracks == len(members) == 8
    assert face.creative_ids == {t.creative_id for t in members}
    assert face.best_track_id == max(members, key=lambda t: t.quality).track_id
    assert np.allclose(face.centroid, np.mean([t.embedding for t in members], axis=0), atol=1e-6)


def test_day_by_day_equals_one_run_and_input_order_does_not_matter():
    tracks, _ = _people(seed=1)
    one = assign_faces([], tracks[::-1], threshold=0.4)  # sorted by order key inside
    known: dict[str, KnownFace] = {}
    face_of: dict[str, str] = {}
    for day in sorted({t.order_key[0] for t in tracks}):
        step = assign_faces(list(known.values()), [t for t in tracks if t.order_key[0] == day], threshold=0.4)
        face_of.update(step.face_of)
        known.update({f.face_id: f for f in step.faces})
    assert face_of == one.face_of
    final = {f.face_id: f for f in one.faces}
    for face_id, face in known.items():
        assert np.array_equal(face.centroid, final[face_id].centroid)
        assert face.n_tracks == final[face_id].n_tracks


def test_far_track_founds_a_new_face_and_inputs_are_not_mutated():
    v = np.zeros(4, dtype=np.float32)
    v[0] = 1
    w = np.zeros(4, dtype=np.float32)
    w[1] = 1
    existing = [KnownFace("f_old", v.astype(np.float64), 1, {"c0"}, "c0", "c0_t0", 0.5)]
    result = assign_faces(existing, [NewTrack("c1_t0", "c1", w, 0.9), NewTrack("c2_t0", "c2", v, 0.1)], threshold=0.4)
    assert result.face_of == {"c1_t0": face_id_for("c1_t0"), "c2_t0": "f_old"}
    assert existing[0].n_tracks == 1 and existing[0].creative_ids == {"c0"}
    old = next(f for f in result.faces if f.face_id == "f_old")
    assert old.n_tracks == 2 and old.creative_ids == {"c0", "c2"} and old.best_track_id == "c0_t0"
    assert "centroid" not in repr(old) and "0.0" not in repr(old)


def test_recluster_keeps_old_ids_and_repairs_a_split():
    tracks, truth = _people(n_people=3, per_person=6, seed=2)
    incremental = assign_faces([], tracks, threshold=0.4)
    previous = dict(incremental.face_of)
    # pretend an earlier run split person 0 into two ids
    person0 = [t.track_id for t in tracks if truth[t.track_id] == 0]
    for tid in person0[4:]:
        previous[tid] = "f_split"
    full = recluster(tracks, threshold=0.4, previous=previous)
    assert {full.face_of[t] for t in person0} == {incremental.face_of[person0[0]]}
    assert set(full.face_of.values()) == set(incremental.face_of.values())
    assert recluster(tracks, 0.4, previous).face_of == full.face_of  # deterministic


def _at_distance(base: np.ndarray, direction: np.ndarray, d: float) -> np.ndarray:
    """A unit vector at Euclidean distance ``d`` from unit ``base``, turned towards ``direction``."""
    ortho = direction - (direction @ base) * base
    ortho /= np.linalg.norm(ortho)
    theta = 2 * np.arcsin(d / 2)
    return np.cos(theta) * base + np.sin(theta) * ortho


def test_safety_margin_band_needs_agreeing_samples_and_no_rival() -> None:
    from adpipeline.faces.cluster import KnownFace, NewTrack, assign_faces

    rng = np.random.default_rng(3)
    a = rng.normal(size=128)
    a /= np.linalg.norm(a)
    face = KnownFace("f_a", a.copy(), n_tracks=3, creative_ids={"v0"}, first_creative_id="v0")

    def place(d: float, n_samples: int, existing=(face,)) -> str:
        track = NewTrack("v1_t0", "v1", _at_distance(a, rng.normal(size=128), d), 0.5, ("v1",), n_samples)
        return assign_faces(list(existing), [track], 0.40).face_of["v1_t0"]

    assert place(0.36, 1) == "f_a"  # clearly inside: joins even on one sample
    assert place(0.39, 1) != "f_a"  # in the band on one sample (one bad frame): a new face, not a merge
    assert place(0.39, 3) == "f_a"  # in the band, several agreeing samples, no rival: joins
    assert place(0.41, 3) != "f_a"  # outside the threshold: never
    # A rival face about as near: ambiguous, so a new face rather than a coin-flip merge.
    from adpipeline.faces.cluster import _joins

    assert _joins(0.385, 0.43, 3, 0.40, 0.03, 2) is True
    assert _joins(0.385, 0.40, 3, 0.40, 0.03, 2) is False
    assert _joins(0.385, 0.43, 1, 0.40, 0.03, 2) is False
    # margin=0 restores the plain rule
    plain = NewTrack("v1_t0", "v1", _at_distance(a, rng.normal(size=128), 0.39), 0.5, ("v1",), 1)
    assert assign_faces([face], [plain], 0.40, margin=0.0).face_of["v1_t0"] == "f_a"
