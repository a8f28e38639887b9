"""### adp_media — fetch media safely, hash images, group near-duplicates, probe videos

Triggered by `adpipeline.creatives`. For the window's creatives without a good fetch: fetches the bytes (address
block, size caps, retries; cached by sha256 in the bucket) and MERGEs a status row per creative into
**`media_fetches`**; MERGEs **`image_hashes`** (dHash, size, aspect) and **`video_metadata`** (key `creative_id`);
then recomputes near-duplicate groups over all hashes and MERGEs **`duplicate_groups`**. Emits `adpipeline.media`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_media",
    schedule=[ASSETS["creatives"]],
    **dag_defaults(__doc__),
):

    @task(pool="media_fetch")
    def fetch_media(**context):
        from adpipeline.stages import media

        return run_stage(media.fetch, context, None)

    @task
    def analyse_media(**context):
        from adpipeline.stages import media

        return run_stage(media.analyse, context, None)

    @task(outlets=[ASSETS["media"]])
    def merge_duplicate_groups(**context):
        from adpipeline.stages import media

        return run_stage(media.group, context, ASSETS["media"])

    fetch_media() >> analyse_media() >> merge_duplicate_groups()
