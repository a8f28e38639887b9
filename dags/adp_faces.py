"""### adp_faces — unique faces across ad videos, linked to performance

Triggered by `adpipeline.media`. `plan_faces` lists every usable video this face backend/model has not analysed yet
(whatever day it came from), in chunks of `ADP_FACES_CHUNK_SIZE`. One mapped `detect_faces` task per chunk samples
frames, detects, embeds and tracks faces, and MERGEs each video's tracks into **`face_detections`** (key `track_id`),
its crops into the bucket and its **`face_video_status`** row, video by video. `cluster_faces` then places every
unassigned track in a unique face (incremental, stable ids, global order) and MERGEs **`faces`** (key `face_id`);
`rebuild_face_performance` rebuilds **`face_performance`** (one row per face plus a `__no_face__` baseline). Emits
`adpipeline.faces`.
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
    def plan_faces(**context):
        from adpipeline.stages import faces

        return run_stage(faces.plan, context)

    @task
    def detect_faces(chunk, **context):
        from adpipeline.stages import faces

        return run_stage(faces.detect, context, chunk=chunk)

    @task(trigger_rule="none_failed")
    def cluster_faces(**context):
        from adpipeline.stages import faces

        return run_stage(faces.cluster, context)

    @task(outlets=[ASSETS["faces"]])
    def rebuild_face_performance(**context):
        from adpipeline.stages import faces

        return run_stage(faces.performance, context, ASSETS["faces"])

    detect_faces.expand(chunk=plan_faces()) >> cluster_faces() >> rebuild_face_performance()
