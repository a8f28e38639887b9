"""### adp_final — rebuild `ads_enriched`

Triggered when both `adpipeline.features` and `adpipeline.faces` have new events, or when Gemini Batch results were
collected (`adpipeline.feature_batches`). Rebuilds **`ads_enriched`**
(CREATE OR REPLACE from `sql/final/select_ads_enriched.sql`; grain one row per source `(ad_id, date)`), then checks
that its row count equals the source rows it covers and that the key is unique. Emits `adpipeline.ads_enriched`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_final",
    schedule=((ASSETS["features"] & ASSETS["faces"]) | ASSETS["feature_batches"]),
    **dag_defaults(__doc__),
):

    @task(outlets=[ASSETS["ads_enriched"]])
    def rebuild_ads_enriched(**context):
        from adpipeline.stages import final

        return run_stage(final.run, context, ASSETS["ads_enriched"])

    rebuild_ads_enriched()
