"""### adp_feature_batches — collect Gemini Batch jobs

Triggered by `adpipeline.features`. When `adp_features` sent part of its work to Gemini Batch mode (half price,
answers within 24 h), its rows say `submitted` and the jobs are listed in **`genai_batches`**. `any_open_batches`
skips the rest when no job is open (no asset event then). `collect_batches` checks the jobs every
few minutes in reschedule mode (no worker slot held in between), MERGEs each finished job's rows into
**`image_features`** / **`video_features`**, its ledger rows into **`genai_usage`** and its state into
**`genai_batches`**, and emits `adpipeline.feature_batches` when none is left, which rebuilds `ads_enriched`.
Runs of `adp_features` for later days are not held up by this wait.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, BATCH_POLL, BATCH_WAIT, dag_defaults, run_check, run_stage

with DAG(
    dag_id="adp_feature_batches",
    schedule=[ASSETS["features"]],
    **dag_defaults(__doc__),
):

    @task.short_circuit
    def any_open_batches(**context):
        from adpipeline.stages import features

        return run_stage(features.has_open_batches, context)

    @task.sensor(
        outlets=[ASSETS["feature_batches"]],
        mode="reschedule",
        poke_interval=BATCH_POLL.total_seconds(),
        timeout=BATCH_WAIT.total_seconds(),
    )
    def collect_batches(**context):
        from adpipeline.stages import features

        return run_check(features.collect_batches, context, ASSETS["feature_batches"])

    any_open_batches() >> collect_batches()
