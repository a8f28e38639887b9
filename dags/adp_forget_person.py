"""### adp_forget_person — forget one person everywhere (manual trigger, Params)

Name **one** of `customer_id` (an enrolled customer) or `face_id` (a unique face, e.g. from the faces leaderboard).
With `dry_run` on (the default) the task lists what would go, by table and bucket prefix, with counts, and writes only
the audit row; trigger again with `dry_run` off to delete. It deletes the person's gallery vectors and templates, unique
faces, tracks, crops, customer appearances, verifications, output-bucket copies and JSON records (rewritten without
them where other people remain), and their rows in `face_performance` and `ads_enriched`, with DML on every table; the
customer's own source bucket is reported, never touched. Suppression rows (**`privacy_suppressions`**, no vectors)
stop later runs from recreating the person; `withdraw` lifts them. One audit row per request in
**`privacy_requests`** (who triggered it, counts; no biometric data). See README, "Deleting a person".
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, task

from adpipeline.airflow_adapter import dag_defaults, run_stage

PARAMS = {
    "customer_id": Param(None, type=["null", "string"], description="The customer to forget (or leave empty)."),
    "face_id": Param(None, type=["null", "string"], description="The unique face to forget (or leave empty)."),
    "dry_run": Param(True, type="boolean", description="Only list what would be deleted (with counts)."),
    "withdraw": Param(False, type="boolean", description="Lift the suppression of earlier requests for this id."),
}

with DAG(dag_id="adp_forget_person", schedule=None, **dag_defaults(__doc__, params=PARAMS)):

    @task
    def forget_person(**context):
        from adpipeline.privacy.audit import airflow_trigger
        from adpipeline.stages import privacy

        params, run = context["params"], context["dag_run"]
        return run_stage(
            privacy.forget_person,
            context,
            customer_id=params.get("customer_id") or None,
            face_id=params.get("face_id") or None,
            dry_run=bool(params.get("dry_run")),
            withdraw=bool(params.get("withdraw")),
            triggered_by=airflow_trigger(getattr(run, "triggering_user_name", None), context["run_id"]),
            request_id=f"adp_forget_person:{context['run_id']}",
        )

    forget_person()
