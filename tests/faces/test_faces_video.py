"""Video faces: sampling, tracking and the bad inputs, each ending as a status (never an exception)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adpipeline.faces.video import process_video, process_videos


def _persons(result, apps, synth) -> list[str | None]:
    return [synth.truth_person(apps, t.best_time_s, t.best_box) for t in result.tracks]


def test_tracks_follow_people_and_split_at_a_cut(two_people_video, synth, face_settings, dlib_engine):
    path, apps = two_people_video
    result = process_video("c1", str(path), face_settings(), dlib_engine)
    assert result.status == "ok" and result.reason is None
    assert result.frames_sampled == 6 and (result.width, result.height) == (640, 360)
    assert [t.track_id for t in result.tracks] == ["c1_t0", "c1_t1", "c1_t2"]
    assert _persons(result, apps, synth) == ["obama", "grace_hopper", "biden"]
    obama, grace, biden = result.tracks
    assert (obama.first_time_s, obama.last_time_s, obama.n_frames) == (0.0, 5.0, 6)  # snapped to keyframes
    assert grace.last_time_s < 3 <= biden.first_time_s
    for track in result.tracks:
        assert track.embedding.dtype == np.float32 and abs(float(np.linalg.norm(track.embedding)) - 1) < 1e-5
        assert track.crop_jpeg[:2] == b"\xff\xd8" and track.box_size_px >= 90 and 0 < track.quality <= 1
        assert "embedding" not in repr(track)
    # embeddings are spent per track, not per detection
    assert result.embeddings_computed <= 3 * len(result.tracks) + 4
    again = process_video("c1", str(path), face_settings(), dlib_engine)
    assert [t.embedding.tobytes() for t in again.tracks] == [t.embedding.tobytes() for t in result.tracks]


def test_same_person_throughout_is_one_track(tmp_path, synth, face_settings, dlib_engine):
    apps = [synth.Appearance("eileen_collins", "eileen_collins/astronaut.jpg", 0, 8, (150, 180), (480, 190), 130)]
    path = synth.write_video(tmp_path / "one.mp4", apps, 8.0, (640, 360), fps=8, gop=40)  # keyframe every 5 s
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert result.status == "ok" and len(result.tracks) == 1 and result.tracks[0].n_frames == 8


def test_no_faces(tmp_path, synth, face_settings, dlib_engine):
    path = synth.write_video(tmp_path / "empty.mp4", [], 3.0, (320, 240), fps=5)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert (result.status, result.frames_sampled, result.tracks) == ("no_faces", 3, [])


@pytest.mark.parametrize(
    ("content", "status"),
    [(b"", "corrupt"), (b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, "corrupt"), (None, "missing")],
)
def test_unreadable_files(tmp_path, content, status, face_settings, dlib_engine):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert result.status == status and result.reason and result.tracks == []


def test_truncated_video_keeps_what_came_before(two_people_video, tmp_path, face_settings, dlib_engine):
    path, _ = two_people_video
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # mp4 with its index at the end: unreadable, reported, not raised
    assert process_video("c", str(cut), face_settings(), dlib_engine).status in {"corrupt", "ok", "no_faces"}
    mkv = tmp_path / "stream.ts"
    import av

    with av.open(str(path)) as src, av.open(str(mkv), "w", format="mpegts") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    data = mkv.read_bytes()
    mkv.write_bytes(data[: len(data) // 2] + b"\x47\xff" * 500)  # a stream cut mid-way, then garbage
    result = process_video("c", str(mkv), face_settings(), dlib_engine)
    assert result.status == "ok" and 1 <= result.frames_sampled <= 6 and result.tracks


def test_one_frame_video(tmp_path, synth, face_settings, dlib_engine):
    apps = [synth.Appearance("obama", "obama/obama2.jpg", 0, 1, (320, 180), (320, 180), 140)]
    path = synth.write_video(tmp_path / "one_frame.mp4", apps, 0.04, (640, 360), fps=25)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert (result.status, result.frames_sampled, len(result.tracks)) == ("ok", 1, 1)


def test_huge_resolution_is_downscaled_before_detection(tmp_path, synth, face_settings, dlib_engine):
    apps = [synth.Appearance("grace_hopper", "grace_hopper/grace_hopper.jpg", 0, 2, (2000, 1100), (2000, 1100), 700)]
    path = synth.write_video(tmp_path / "huge.mp4", apps, 1.0, (4096, 2160), fps=2)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert result.status == "ok" and (result.width, result.height) == (4096, 2160)
    (track,) = result.tracks
    assert 550 < track.box_size_px < 900  # reported in the video's own pixels
    assert track.best_box[0] > 1500


def test_faces_at_the_frame_edge(tmp_path, synth, face_settings, dlib_engine):
    apps = [
        synth.Appearance("biden", "biden/biden.jpg", 0, 3, (40, 180), (40, 180), 120),  # a third off the left edge
        synth.Appearance("obama", "obama/obama.jpg", 0, 3, (560, 330), (560, 330), 110),  # bottom edge
    ]
    path = synth.write_video(tmp_path / "edge.mp4", apps, 3.0, (640, 360), fps=5)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert result.status in {"ok", "no_faces"}
    for track in result.tracks:
        x0, y0, x1, y1 = track.best_box
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360 and track.crop_jpeg


def test_rotation_metadata_is_respected(tmp_path, synth, face_settings, dlib_engine):
    apps = [synth.Appearance("obama", "obama/obama.jpg", 0, 2, (320, 180), (320, 180), 130)]
    path = synth.write_video(tmp_path / "rot.mp4", apps, 2.0, (640, 360), fps=5, rotate=True)
    result = process_video("c", str(path), face_settings(), dlib_engine)
    assert (result.width, result.height) == (640, 360)  # stored 360x640, shown 640x360
    assert result.status == "ok" and len(result.tracks) == 1


def test_audio_only_file_has_no_video_stream(tmp_path, face_settings, dlib_engine):
    import av

    path = tmp_path / "audio.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for i in range(10):
            frame.pts = i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    assert process_video("c", str(path), face_settings(), dlib_engine).status == "no_video_stream"


def test_process_videos_keeps_input_order(two_people_video, tmp_path, face_settings):
    path, _ = two_people_video
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    items = [("a", str(path)), ("b", str(bad)), ("c", str(path))]
    results = process_videos(items, face_settings())
    assert [r.creative_id for r in results] == ["a", "b", "c"]
    assert [r.status for r in results] == ["ok", "corrupt", "ok"]
    assert [t.track_id for t in results[2].tracks] == ["c_t0", "c_t1", "c_t2"]
    assert process_videos([], face_settings()) == []


def test_cap_spreads_samples_over_long_videos(tmp_path, synth, face_settings, dlib_engine):
    path = synth.write_video(tmp_path / "long.mp4", [], 10.0, (160, 120), fps=5)
    result = process_video("c", str(path), face_settings(face_max_frames=4), dlib_engine)
    assert result.frames_sampled == 4 and result.status == "no_faces"


def test_path_is_a_folder(tmp_path, face_settings, dlib_engine):
    result = process_video("c", str(tmp_path), face_settings(), dlib_engine)
    assert result.status in {"corrupt", "failed"} and result.reason
    assert Path(tmp_path).exists()
