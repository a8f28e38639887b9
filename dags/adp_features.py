"""### adp_features — structured creative features

Triggered by `adpipeline.media`. Extracts features for one canonical image per duplicate group and for each video
with the configured provider (offline by default) and MERGEs **`image_features`** / **`video_features`** (key
`creative_id`; a row is redone only when the provider, model or prompt version changes). Emits `adpipeline.features`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_features",
    schedule=[ASSETS["media"]],
    **dag_defaults(__doc__),
):

    @task(pool="genai_api")
    def extract_image_features(**context):
        from adpipeline.stages import features

        return run_stage(features.images, context, None)

    @task(pool="genai_api", outlets=[ASSETS["features"]])
    def extract_video_features(**context):
        from adpipeline.stages import features

        return run_stage(features.videos, context, ASSETS["features"])

    extract_image_features() >> extract_video_features()
