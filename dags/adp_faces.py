"""### adp_faces — unique faces across ad videos, linked to performance

Triggered by `adpipeline.media`. Samples frames of the window's new videos, detects, embeds and tracks faces,
assigns each track to a unique face (incremental, stable ids) and MERGEs **`face_detections`** (key `track_id`),
**`faces`** (key `face_id`) and **`face_video_status`**; crops go to the bucket. Then rebuilds
**`face_performance`** (one row per face plus a `__no_face__` baseline). Emits `adpipeline.faces`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_faces",
    schedule=[ASSETS["media"]],
    **dag_defaults(__doc__),
):

    @task
    def detect_and_cluster_faces(**context):
        from adpipeline.stages import faces

        return run_stage(faces.detect, context, None)

    @task(outlets=[ASSETS["faces"]])
    def rebuild_face_performance(**context):
        from adpipeline.stages import faces

        return run_stage(faces.performance, context, ASSETS["faces"])

    detect_and_cluster_faces() >> rebuild_face_performance()
