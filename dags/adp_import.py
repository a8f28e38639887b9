"""### adp_import — source ads → `creatives`

Reads the source ads of the run's data interval (or the `start`/`end` params) and MERGEs one row per distinct
creative URL into **`creatives`** (key `creative_id`; `first_seen_date`/`last_seen_date` widen, so runs in any order
agree). Daily, with catchup for backfills. Emits the `adpipeline.creatives` asset with the window it covered.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, daily, run_stage

with DAG(
    dag_id="adp_import",
    schedule=daily(),
    catchup=True,
    **dag_defaults(__doc__),
):

    @task(outlets=[ASSETS["creatives"]])
    def merge_into_creatives(**context):
        from adpipeline.stages import ingest

        return run_stage(ingest.run, context, ASSETS["creatives"])

    merge_into_creatives()
