"""### adp_gallery — which of our customers appear in our ad videos

Runs daily and whenever `adpipeline.faces` changes. Enrols the customer base bucket (`ADP_GALLERY_URL` or the
`gallery_url` Param; `<customer_id>.jpg|png|webp` or a folder per customer): one status row per photo in
**`gallery_photos`** (MERGE, key `customer_id, photo_key, model_id`; only changed bytes are re-enrolled) and one
template per customer in **`gallery`** (MERGE, key `customer_id, model_id`). Then matches every track of every analysed
video against the gallery (open set: a customer or unknown) into **`customer_appearances`** (replaced per model, key
`customer_id, creative_id, face_id`), copies matched customers' photos to the output bucket and writes one JSON record
per video (`<output>/YYYYMMDD/<creative_id>.json`, ledger **`gallery_video_records`**). Emits `adpipeline.gallery`.
"""

from __future__ import annotations

from functools import partial

from airflow.sdk import DAG, Param, task
from airflow.timetables.assets import AssetOrTimeSchedule

from adpipeline.airflow_adapter import ASSETS, dag_defaults, daily, run_stage

defaults = dag_defaults(__doc__)
defaults["params"] = {
    **defaults["params"],
    "gallery_url": Param(
        None, type=["null", "string"], description="Customer base (folder or gs://); default setting."
    ),
}

with DAG(
    dag_id="adp_gallery",
    schedule=AssetOrTimeSchedule(timetable=daily(), assets=[ASSETS["faces"]]),
    **defaults,
):

    @task
    def enrol_customers(**context):
        from adpipeline.stages import gallery

        return run_stage(partial(gallery.enrol, source=context["params"].get("gallery_url")), context, None)

    @task(outlets=[ASSETS["gallery"]])
    def match_customers_in_videos(**context):
        from adpipeline.stages import gallery

        return run_stage(gallery.match, context, ASSETS["gallery"])

    enrol_customers() >> match_customers_in_videos()
