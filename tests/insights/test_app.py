"""Every route of the insights app over a small seeded warehouse: auth, content, images, uploads."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import BaseModel

from adpipeline.insights import create_app
from tests.insights.conftest import ADMIN, VIEWER, Seeded, png, read_dependency, run_dependency

GET_ROUTES = [
    "/faces",
    "/duplicates",
    "/features",
    "/spend",
    "/verify",
    "/api/faces",
    "/faces/face_a/crop.jpg",
    "/static/insights.css",
]
POST_ROUTES = ["/verify", "/api/verify"]
TINY_MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


@pytest.mark.parametrize("path", GET_ROUTES)
def test_anonymous_gets_401_everywhere(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_anonymous_gets_401_on_thumbnails(client: TestClient, seeded: Seeded) -> None:
    assert client.get(f"/media/{seeded.image_sha['img0']}/160.jpg").status_code == 401


@pytest.mark.parametrize("path", POST_ROUTES)
def test_anonymous_and_viewer_cannot_run_a_verification(client: TestClient, path: str) -> None:
    files = {"image": ("a.png", png((1, 2, 3)), "image/png"), "video": ("v.mp4", TINY_MP4, "video/mp4")}
    assert client.post(path, files=files).status_code == 401
    assert client.post(path, files=files, headers=VIEWER).status_code == 403


@pytest.mark.parametrize("path", GET_ROUTES)
def test_viewer_reads_every_page(client: TestClient, path: str) -> None:
    response = client.get(path, headers=VIEWER)
    assert response.status_code == 200, response.text


def test_faces_leaderboard(client: TestClient) -> None:
    html = client.get("/faces", headers=ADMIN).text
    # best CTR first, each with its crop, figures and interval, against the no-face baseline
    assert html.index('data-face-id="face_a"') < html.index('data-face-id="face_b"')
    assert 'src="faces/face_a/crop.jpg"' in html and 'src="faces/face_b/crop.jpg"' in html
    assert "no face 2.00%" in html  # the dashed baseline line of the chart
    assert "20,000" in html and "3.00%" in html
    assert "__no_face__" not in html
    row_a = html[html.index('data-face-id="face_a"') : html.index('data-face-id="face_b"')]
    assert '<span class="tag">c042 (98 %)</span>' in row_a  # the gallery customer matched to face_a
    assert "<svg" in html and "<script" not in html
    data = client.get("/api/faces", headers=ADMIN).json()
    assert [f["face_id"] for f in data["faces"]] == ["face_a", "face_b"]
    assert [f["customers"] for f in data["faces"]] == [["c042 (98 %)"], []]
    assert data["baseline"]["baseline_ctr"] == pytest.approx(0.02)
    a = data["faces"][0]
    assert a["ctr_low"] < a["ctr"] < a["ctr_high"]  # from feature_performance (feature 'face')


def test_face_crop_is_served_by_face_id_only(client: TestClient) -> None:
    response = client.get("/faces/face_a/crop.jpg", headers=ADMIN)
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    assert client.get("/faces/nobody/crop.jpg", headers=ADMIN).status_code == 404
    assert client.get("/faces/..%2F..%2Fetc%2Fpasswd/crop.jpg", headers=ADMIN).status_code == 404


def test_duplicate_groups_side_by_side(client: TestClient, seeded: Seeded) -> None:
    html = client.get("/duplicates", headers=ADMIN).text
    assert "2 groups hold 5 of 6 hashed images" in html
    assert html.index('data-group-id="g_img0"') < html.index('data-group-id="g_img3"')  # largest first
    assert "g_img5" not in html  # a group of one is no duplicate
    group = html[html.index('data-group-id="g_img0"') : html.index('data-group-id="g_img3"')]
    thumbs = re.findall(r'src="media/([0-9a-f]{64})/160\.jpg"', group)
    assert thumbs == [seeded.image_sha["img0"], seeded.image_sha["img1"], seeded.image_sha["img2"]]
    assert group.count("canonical</span>") == 1 and "distance 3" in group and "distance 5" in group


def test_thumbnails_only_by_content_key(client: TestClient, seeded: Seeded) -> None:
    sha = seeded.image_sha["img0"]
    response = client.get(f"/media/{sha}/160.jpg", headers=ADMIN)
    assert response.status_code == 200
    assert max(Image.open(io.BytesIO(response.content)).size) <= 160
    assert client.get(f"/media/{sha}/999.jpg", headers=ADMIN).status_code == 404
    assert client.get(f"/media/{'0' * 64}/160.jpg", headers=ADMIN).status_code == 404  # valid form, not stored
    assert client.get(f"/media/{sha.upper()}/160.jpg", headers=ADMIN).status_code == 404
    assert client.get("/media/..%2F..%2Fwarehouse.duckdb/160.jpg", headers=ADMIN).status_code == 404


def test_static_assets_by_name_only(client: TestClient) -> None:
    assert "nav.tabs" in client.get("/static/insights.css", headers=ADMIN).text
    assert client.get("/static/app.py", headers=ADMIN).status_code == 404
    assert client.get("/static/..%2Fapp.py", headers=ADMIN).status_code == 404


def test_features_page_and_date_filter(client: TestClient) -> None:
    html = client.get("/features?feature=color", headers=ADMIN).text
    assert "red" in html and "blue" in html and "white" in html
    # red's two creatives (4 % and 2 %) disagree too much for its interval to leave the rest's CTR: no flag
    assert '<span class="flag' not in html
    one_day = client.get("/features?feature=color&start=2026-10-02&end=2026-10-02", headers=ADMIN).text
    assert "40,000" in one_day  # red over one day: 8 ad-days halved
    assert "80,000" not in one_day
    empty = client.get("/features?feature=color&start=2027-01-01&end=2027-01-31", headers=ADMIN).text
    assert "No values for this feature in these dates" in empty
    assert client.get("/features?feature=nope", headers=ADMIN).status_code == 404
    assert client.get("/features?feature=color&start=2026-10-05&end=2026-10-01", headers=ADMIN).status_code == 422
    assert client.get("/features?feature=color;drop", headers=ADMIN).status_code == 422


def test_spend_page(client: TestClient) -> None:
    html = client.get("/spend", headers=ADMIN).text
    assert "$0.7800 from 2026-10-01 to 2026-10-03" in html  # 0.01 * (1 + ... + 12)
    assert "gemini / gemini-2.5-flash" in html and "video in" in html
    assert html.count("<meter") == 6  # runs x modalities
    day = client.get("/spend?start=2026-10-02&end=2026-10-02", headers=ADMIN).text
    assert "$0.2600 from 2026-10-02" in day  # calls 4..7


def test_pages_of_an_empty_warehouse(tmp_path: Path) -> None:
    from adpipeline.settings import Settings

    app = create_app(
        read_dependency=read_dependency, run_dependency=run_dependency, settings=Settings(home=tmp_path / "h")
    )
    with TestClient(app) as client:
        for path in ("/faces", "/duplicates", "/features", "/spend"):
            response = client.get(path, headers=ADMIN)
            assert response.status_code == 200, path
            assert 'class="empty"' in response.text, path


# --- uploads ---------------------------------------------------------------------------------------
class FakeResult(BaseModel):
    matched: bool
    image_bytes: int
    video_bytes: int


class RecordingVerifier:
    """Stands in for the face engine to test the upload plumbing: what it was handed, and that the file went away."""

    def __init__(self) -> None:
        self.paths: list[Path] = []

    def __call__(self, image: bytes, video_path: Path, settings) -> FakeResult:
        self.paths.append(video_path)
        return FakeResult(matched=True, image_bytes=len(image), video_bytes=video_path.stat().st_size)


@pytest.fixture
def upload_client(seeded: Seeded):
    verifier = RecordingVerifier()
    settings = seeded.settings.model_copy(update={"max_image_bytes": 200_000, "insights_max_upload_bytes": 300_000})
    app = create_app(
        read_dependency=read_dependency, run_dependency=run_dependency, settings=settings, verifier=verifier
    )
    with TestClient(app) as client:
        yield client, verifier


def test_upload_plumbing(upload_client) -> None:
    client, verifier = upload_client
    image = png((10, 20, 30))
    files = {"image": ("me.png", image, "image/png"), "video": ("../../etc/passwd", TINY_MP4, "video/mp4")}
    response = client.post("/api/verify", files=files, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.json() == {"matched": True, "image_bytes": len(image), "video_bytes": len(TINY_MP4)}
    assert verifier.paths[-1].name == "video"  # our name, never the client's
    assert not verifier.paths[-1].exists()  # removed after the answer
    html = client.post("/verify", files=files, headers=ADMIN)
    assert html.status_code == 200 and 'id="verify-result"' in html.text


@pytest.mark.parametrize(
    ("image", "video", "status", "message"),
    [
        (b"x" * 200_001, TINY_MP4, 413, "over the cap"),
        ("truncated", TINY_MP4, 422, "corrupt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", TINY_MP4, 415, "not a JPEG"),
        (None, TINY_MP4, 422, "a image is needed"),
        ("png", b"not a video at all", 415, "not an MP4"),
        ("png", b"", 422, "video is empty"),
        ("png", b"\x00\x00\x00\x18ftyp" + b"\x00" * 300_000, 413, "over the cap"),
    ],
)
def test_bad_uploads_are_refused(upload_client, image, video, status, message) -> None:
    client, verifier = upload_client
    files = {}
    if image is not None:
        whole = png((1, 1, 1))
        files["image"] = ("i.png", {"png": whole, "truncated": whole[:60]}.get(image, image), "image/png")
    files["video"] = ("v.mp4", video, "video/mp4")
    before = len(verifier.paths)
    response = client.post("/api/verify", files=files, headers=ADMIN)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    html = client.post("/verify", files=files, headers=ADMIN)
    assert html.status_code == status and message in html.text
    assert len(verifier.paths) == before  # the verifier never saw it


def test_decompression_bomb_is_refused(upload_client) -> None:
    client, _ = upload_client
    out = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(out, format="PNG")  # 144 Mpx over the 50 Mpx cap, ~140 KB
    files = {"image": ("bomb.png", out.getvalue(), "image/png"), "video": ("v.mp4", TINY_MP4, "video/mp4")}
    response = client.post("/api/verify", files=files, headers=ADMIN)
    assert response.status_code == 413 and "pixels" in response.json()["detail"]


def test_request_body_cap_before_reading(upload_client) -> None:
    client, _ = upload_client
    response = client.post(
        "/api/verify", content=b"x" * 10, headers={**ADMIN, "Content-Length": str(10**10), "Content-Type": "text/x"}
    )
    assert response.status_code == 413


def test_urls_go_through_the_media_guards(upload_client) -> None:
    client, verifier = upload_client
    cases = {
        "file:///etc/passwd": "must be http",
        "/etc/passwd": "must be http",
        "gs://bucket/x.png": "must be http",
        "http://127.0.0.1:9/x.png": "blocked",
        "http://169.254.169.254/latest/meta-data": "blocked",
    }
    for url, message in cases.items():
        response = client.post(
            "/api/verify", data={"image_url": url}, files={"video": ("v.mp4", TINY_MP4, "video/mp4")}, headers=ADMIN
        )
        assert response.status_code == 422, (url, response.text)
        assert message in response.json()["detail"], (url, response.json())
    both = client.post(
        "/api/verify",
        data={"image_url": "https://example.com/a.png"},
        files={"image": ("a.png", png((0, 0, 0)), "image/png"), "video": ("v.mp4", TINY_MP4, "video/mp4")},
        headers=ADMIN,
    )
    assert both.status_code == 422 and "not both" in both.json()["detail"]
    assert verifier.paths == []


def test_cross_site_post_is_refused(upload_client) -> None:
    client, verifier = upload_client
    files = {"image": ("a.png", png((1, 2, 3)), "image/png"), "video": ("v.mp4", TINY_MP4, "video/mp4")}
    response = client.post("/verify", files=files, headers={**ADMIN, "Origin": "https://evil.example"})
    assert response.status_code == 403
    ok = client.post("/verify", files=files, headers={**ADMIN, "Origin": "http://testserver"})
    assert ok.status_code == 200


# --- the real verification ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def obama_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.faces import face_synth

    apps = [face_synth.Appearance("obama", "obama/obama.jpg", 0, 4, (200, 180), (240, 170), 120)]
    return face_synth.write_video(tmp_path_factory.mktemp("verify") / "obama.mp4", apps, 4.0, (640, 360), fps=5)


def test_real_verification_html_and_json(seeded: Seeded, obama_video: Path) -> None:
    assets = Path(__file__).resolve().parents[2] / "adpipeline" / "demo" / "assets" / "faces"
    settings = seeded.settings
    app = create_app(read_dependency=read_dependency, run_dependency=run_dependency, settings=settings)
    video = obama_video.read_bytes()
    with TestClient(app) as client:
        same = {
            "image": ("o.jpg", (assets / "obama/obama2.jpg").read_bytes(), "image/jpeg"),
            "video": ("v.mp4", video, "video/mp4"),
        }
        html = client.post("/verify", files=same, headers=ADMIN)
        assert html.status_code == 200, html.text
        assert "Same person" in html.text and 'id="best-frame" src="data:image/jpeg;base64,' in html.text
        other = {
            "image": ("g.jpg", (assets / "grace_hopper/grace_hopper.jpg").read_bytes(), "image/jpeg"),
            "video": ("v.mp4", video, "video/mp4"),
        }
        answer = client.post("/api/verify", files=other, headers=ADMIN).json()
        assert answer["status"] == "ok" and answer["face_in_image"] and answer["face_in_video"]
        assert answer["matched"] is False and answer["frames_checked"] >= 1
