"""face_verify: is the person in this photo in this video? Fetches both URLs safely, verifies, stores the answer.

The photo and the video go through the media fetcher (timeouts, size caps, private-address block, the same cache of
content-addressed blobs as the media stage), then :func:`adpipeline.faces.verify.verify`. One row per (photo bytes,
video bytes, model, FAR) in ``face_verifications`` (MERGE on ``verification_id``): verifying the same pair twice
updates the same row. A URL that cannot be fetched is a row with status ``bad_image`` / ``bad_video``, not a failure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import ExitStack
from typing import Any

from adpipeline.stages.context import StageContext
from adpipeline.tables import FaceVerification


def verification_id(image_sha256: str | None, video_sha256: str | None, model_id: str, far: float, urls: str) -> str:
    """Stable id of one verification question (the URLs stand in for bytes that could not be fetched)."""
    text = f"{image_sha256 or urls}|{video_sha256 or urls}|{model_id}|{far:g}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def verify_urls(ctx: StageContext, image_url: str, video_url: str, far: float | None = None) -> dict[str, Any]:
    """Fetch, verify and store one photo/video pair; returns the stored row as a dict."""
    from adpipeline.faces.verify import Verification, VerifyStatus, verify
    from adpipeline.faces.video import shared_engine
    from adpipeline.media.fetch import FetchRequest, fetch_all

    settings, wh = ctx.settings, ctx.warehouse
    engine = shared_engine(settings)
    far = settings.verify_far if far is None else far
    fetched = fetch_all(
        [FetchRequest("verify_image", image_url, "image"), FetchRequest("verify_video", video_url, "video")],
        settings,
        ctx.bucket,
    )
    image, video = fetched
    with ExitStack() as files:
        if image.ok and video.ok:
            image_bytes = ctx.bucket.get_bytes(image.blob_key)  # type: ignore[arg-type]
            video_path = files.enter_context(ctx.bucket.local_file(video.blob_key))  # type: ignore[arg-type]
            result = verify(image_bytes, video_path, settings, far=far, engine=engine)
        else:
            problems: list[tuple[VerifyStatus, str]] = []
            if not image.ok:
                problems.append(("bad_image", f"photo not fetched: {image.status}: {image.reason}"))
            if not video.ok:
                problems.append(("bad_video", f"video not fetched: {video.status}: {video.reason}"))
            result = Verification(
                status=problems[0][0],
                reason="; ".join(r for _, r in problems),
                backend=engine.name,
                model=engine.model_id,
                far=far,
            )
    row = FaceVerification(
        verification_id=verification_id(image.sha256, video.sha256, engine.model_id, far, f"{image_url}|{video_url}"),
        image_url=image_url,
        video_url=video_url,
        image_sha256=image.sha256,
        video_sha256=video.sha256,
        status=result.status,
        reason=result.reason,
        face_in_image=result.face_in_image,
        faces_in_image=result.faces_in_image,
        face_in_video=result.face_in_video,
        matched=result.matched,
        confidence_pct=result.confidence_pct,
        frames_checked=result.frames_checked,
        best_frame_time_s=result.best_frame_time_s,
        distance=result.distance,
        threshold=result.threshold,
        far=result.far,
        backend=result.backend,
        model_id=result.model,
        run_id=ctx.run_id,
        verified_at=dt.datetime.now(dt.UTC),
    )
    wh.merge_rows("face_verifications", [row])
    return row.model_dump(mode="json")
