"""### adp_import — source ads → `creatives`

Reads the source ads of the run's data interval (or the `start`/`end` params of a manual trigger) and MERGEs one
row per distinct creative URL into **`creatives`** (key `creative_id`; `first_seen_date`/`last_seen_date` widen, so
runs in any order agree). Daily from `ADP_SCHEDULE_START_DATE`; catchup only when `ADP_SCHEDULE_CATCHUP=true`
(otherwise backfill history with `airflow backfill create --dag-id adp_import`). Emits `adpipeline.creatives` with
the window it covered. The import is the only stage scoped by dates: every downstream DAG takes all pending work.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, catchup, dag_defaults, daily, run_stage, window_params

with DAG(
    dag_id="adp_import",
    schedule=daily(),
    catchup=catchup(),
    **dag_defaults(__doc__, params=window_params()),
):

    @task(outlets=[ASSETS["creatives"]])
    def merge_into_creatives(**context):
        from adpipeline.stages import ingest

        return run_stage(ingest.run, context, ASSETS["creatives"])

    merge_into_creatives()
