"""### adp_features — structured creative features

Triggered by `adpipeline.media`. `plan_features` lists every canonical image (one per duplicate group) and video
that still needs features from the configured provider (offline by default; Gemini or any LangChain chat model with
a key), whatever day it came from, in chunks of `ADP_FEATURES_CHUNK_SIZE`. One mapped `extract_features` task per
chunk (pool `genai_api`) MERGEs **`image_features`** / **`video_features`** (key `creative_id`; a row is redone
only when it failed or the provider, model or prompt version changes) and one **`genai_usage`** row per call
(tokens by modality, USD, latency) as it goes.

Model calls stay under the run budget (`ADP_RUN_BUDGET_USD`; items past it are `skipped_budget` and picked up by a
later run) and the rate limits. Large Gemini runs go to Batch mode (half price): their rows say `submitted` and the
separate `adp_feature_batches` DAG waits for and collects the jobs, so waiting neither holds a worker nor blocks the
next day's run of this DAG. Emits `adpipeline.features` when the chunks are done.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

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

    @task(outlets=[ASSETS["features"]], trigger_rule="none_failed")
    def finish_features(summaries, **context):
        from adpipeline.stages import features

        return run_stage(features.finish, context, ASSETS["features"], summaries=list(summaries))

    finish_features(extract_features.expand(chunk=plan_features()))
