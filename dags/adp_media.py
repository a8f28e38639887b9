"""### adp_media — fetch media safely, hash images, group near-duplicates, probe videos

Triggered by `adpipeline.creatives`. `plan_media` lists every creative not fetched or analysed yet (whatever day it
came from: a dropped or merged asset event loses nothing) and splits it into chunks of `ADP_MEDIA_CHUNK_SIZE`;
one mapped `fetch_and_analyse` task per chunk (pool `media_fetch`) fetches the bytes (address block, size caps,
retries; cached by sha256 in the bucket), MERGEs a status row per creative into **`media_fetches`**, then
**`image_hashes`** (dHash, size, aspect) and **`video_metadata`** (key `creative_id`). `merge_duplicate_groups`
then places the new hashes in near-duplicate groups and MERGEs **`duplicate_groups`**. Emits `adpipeline.media`.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import ASSETS, dag_defaults, run_stage

with DAG(
    dag_id="adp_media",
    schedule=[ASSETS["creatives"]],
    **dag_defaults(__doc__),
):

    @task
    def plan_media(**context):
        from adpipeline.stages import media

        return run_stage(media.plan, context)

    @task(pool="media_fetch")
    def fetch_and_analyse(chunk, **context):
        from adpipeline.stages import media

        return run_stage(media.fetch_and_analyse, context, chunk=chunk)

    @task(outlets=[ASSETS["media"]], trigger_rule="none_failed")
    def merge_duplicate_groups(**context):
        from adpipeline.stages import media

        return run_stage(media.group, context, ASSETS["media"])

    fetch_and_analyse.expand(chunk=plan_media()) >> merge_duplicate_groups()
