"""### adp_features — structured creative features

Triggered by `adpipeline.media`. Extracts features for one canonical image per duplicate group and for each video
with the configured provider (offline by default; Gemini or any LangChain chat model with a key) and MERGEs
**`image_features`** / **`video_features`** (key `creative_id`; a row is redone only when it failed or the provider,
model or prompt version changes) and one **`genai_usage`** row per call (tokens by modality, USD, latency).

Model calls run in the `genai_api` pool, under the run budget (`ADP_RUN_BUDGET_USD`; items past it are
`skipped_budget` and picked up by a later run) and the rate limits. Large Gemini runs go to Batch mode (half price):
`collect_batches` then waits for the jobs in reschedule mode, without holding a worker, and collects them.
Emits `adpipeline.features` once every batch is collected.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, BATCH_POLL, BATCH_WAIT, dag_defaults, run_check, run_stage

with DAG(
    dag_id="adp_features",
    schedule=[ASSETS["media"]],
    **dag_defaults(__doc__),
):

    @task(pool="genai_api")
    def extract_image_features(**context):
        from adpipeline.stages import features

        return run_stage(features.images, context, None)

    @task(pool="genai_api")
    def extract_video_features(**context):
        from adpipeline.stages import features

        return run_stage(features.videos, context, None)

    @task.sensor(
        outlets=[ASSETS["features"]],
        mode="reschedule",
        poke_interval=BATCH_POLL.total_seconds(),
        timeout=BATCH_WAIT.total_seconds(),
    )
    def collect_batches(**context):
        from adpipeline.stages import features

        return run_check(features.collect_batches, context, ASSETS["features"])

    [extract_image_features(), extract_video_features()] >> collect_batches()
