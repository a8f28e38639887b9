"""### adp_privacy — keep forgotten people forgotten, and retire old face data (daily)

`enforce_suppressions` deletes whatever matches an active suppression in **`privacy_suppressions`** (a track a
detection task wrote while a forget ran, a forgotten face or customer that came back), with an audit row when it finds
any. `apply_retention` removes the crops and vectors of faces whose videos were in no ad for `ADP_FACE_RETENTION_DAYS`
days before the end of the run's data interval (ids and counts stay for `face_performance` / `ads_enriched`), and
writes one audit row in **`privacy_requests`** per run.
"""

from __future__ import annotations

from airflow.sdk import DAG, task

from adpipeline.airflow_adapter import dag_defaults, daily, run_stage

with DAG(dag_id="adp_privacy", schedule=daily(), catchup=False, **dag_defaults(__doc__)):

    @task
    def enforce_suppressions(**context):
        from adpipeline.privacy.audit import airflow_trigger
        from adpipeline.stages import privacy

        who = airflow_trigger(getattr(context["dag_run"], "triggering_user_name", None), context["run_id"])
        return run_stage(privacy.enforce, context, triggered_by=who)

    @task
    def apply_retention(**context):
        from adpipeline.privacy.audit import airflow_trigger
        from adpipeline.stages import privacy

        who = airflow_trigger(getattr(context["dag_run"], "triggering_user_name", None), context["run_id"])
        return run_stage(privacy.retention, context, triggered_by=who)

    enforce_suppressions() >> apply_retention()
