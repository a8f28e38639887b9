"""### adp_face_verify — is the person in this photo in this video? (manual)

Trigger with the Params `image_url` and `video_url` (https://, gs://, or a local path when allowed). Both are
fetched like media (timeouts, caps, private addresses blocked), the largest face of the photo is compared with the
faces of the video, and the answer — face in image / in video, matched, calibrated confidence %, frames checked, best
frame time, distance, threshold, backend, model — is MERGEd into **`face_verifications`** (key `verification_id`:
the same photo and video bytes, model and FAR give the same row).
"""

from __future__ import annotations

from functools import partial

from airflow.sdk import DAG, Param, task

from adpipeline.airflow_adapter import dag_defaults, run_stage

defaults = dag_defaults(__doc__)
defaults["params"] = {
    **defaults["params"],
    "image_url": Param("", type="string", description="The photo of the person (https://, gs:// or a path)."),
    "video_url": Param("", type="string", description="The video to look for them in."),
}

with DAG(dag_id="adp_face_verify", schedule=None, **defaults):

    @task
    def verify_photo_in_video(**context):
        from adpipeline.stages import verify

        params = context["params"]
        stage = partial(verify.verify_urls, image_url=params["image_url"], video_url=params["video_url"])
        return run_stage(stage, context, None)

    verify_photo_in_video()
