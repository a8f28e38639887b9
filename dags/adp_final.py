"""### adp_final — keep `ads_enriched` and the summary tables equal to a rebuild

Triggered by **any** upstream asset event (`creatives`, `media`, `features`, `feature_batches`, `faces`, `gallery`):
whichever upstream run finishes last, a final run starts after it. A watermark makes the frequent runs cheap: the
run compares a version token of every table it reads (and of its outputs, and a digest of its SQL) with what its
last rebuild stored in `final_watermark`, and stops there when nothing changed. Otherwise it replaces the `date`
partitions of **`ads_enriched`** whose rows differ from a rebuild (one MERGE from
`sql/final/select_ads_enriched.sql`; grain one row per source `(ad_id, date)`), checks that the row count equals the
source rows covered and that the key is unique, rebuilds **`feature_performance`** and **`face_performance`**, and
stores the tokens. Emits `adpipeline.ads_enriched`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_final",
    # Any, not all: an "all of" condition waits for an event that may never come (a features event queued for a
    # faces event left ads_enriched stale). The watermark makes the extra runs cheap.
    schedule=(
        ASSETS["creatives"]
        | ASSETS["media"]
        | ASSETS["features"]
        | ASSETS["feature_batches"]
        | ASSETS["faces"]
        | ASSETS["gallery"]
    ),
    **dag_defaults(__doc__),
):

    @task(outlets=[ASSETS["ads_enriched"]])
    def rebuild_ads_enriched(**context):
        from adpipeline.stages import final

        return run_stage(final.run, context, ASSETS["ads_enriched"])

    rebuild_ads_enriched()
