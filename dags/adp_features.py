"""### adp_features — structured creative features

Triggered by `adpipeline.media`. `plan_features` lists every canonical image (one per duplicate group) and video
that still needs features from the configured provider (offline by default; Gemini or any LangChain chat model with
a key), whatever day it came from, in chunks of `ADP_FEATURES_CHUNK_SIZE`. One mapped `extract_features` task per
chunk (pool `genai_api`) MERGEs **`image_features`** / **`video_features`** (key `creative_id`; a row is redone
only when it failed or the provider, model or prompt version changes) and one **`genai_usage`** row per call
(tokens by modality, USD, latency) as it goes.

Model calls stay under the run budget (`ADP_RUN_BUDGET_USD`; items past it are `skipped_budget` and picked up by a
later run) and the rate limits. Large Gemini runs go to Batch mode (half price): `collect_batches` then waits for the
jobs in reschedule mode, without holding a worker, and collects them. Emits `adpipeline.features` once every batch
is collected.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, BATCH_POLL, BATCH_WAIT, dag_defaults, run_check, run_stage

with DAG(
    dag_id="adp_features",
    schedule=[ASSETS["media"]],
    **dag_defaults(__doc__),
):

    @task
    def plan_features(**context):
        from adpipeline.stages import features

        return run_stage(features.plan, context)

    @task(pool="genai_api")
    def extract_features(chunk, **context):
        from adpipeline.stages import features

        return run_stage(features.extract, context, chunk=chunk)

    @task.sensor(
        outlets=[ASSETS["features"]],
        mode="reschedule",
        poke_interval=BATCH_POLL.total_seconds(),
        timeout=BATCH_WAIT.total_seconds(),
        trigger_rule="none_failed",
    )
    def collect_batches(**context):
        from adpipeline.stages import features

        return run_check(features.collect_batches, context, ASSETS["features"])

    extract_features.expand(chunk=plan_features()) >> collect_batches()
