"""Airflow plugin: the adpipeline insights page (``adpipeline.insights``) inside the Airflow 3 UI.

Mounts the FastAPI app at ``/insights`` in the api-server and adds "Insights" to the UI's menu as an external view
shown inside the UI (``url_route``). Airflow does not authenticate plugin apps, so this file hands Airflow's own
security dependencies to the app: every route needs a logged-in user (anonymous: 401), and running a verification
needs the permission to trigger runs of ``adp_face_verify`` (a viewer gets 403).
"""

from __future__ import annotations

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag, requires_authenticated
from airflow.plugins_manager import AirflowPlugin

from adpipeline.insights import create_app

URL_PREFIX = "/insights"
VERIFY_DAG_ID = "adp_face_verify"


class AdpipelineInsightsPlugin(AirflowPlugin):
    name = "adpipeline_insights"
    fastapi_apps = [
        {
            "name": "adpipeline insights",
            "app": create_app(
                read_dependency=requires_authenticated(),
                # running a verification here is what triggering adp_face_verify does: the same permission
                run_dependency=requires_access_dag("POST", DagAccessEntity.RUN, param_dag_id=VERIFY_DAG_ID),
            ),
            "url_prefix": URL_PREFIX,
        }
    ]
    external_views = [
        {
            "name": "Insights",
            "href": f"{URL_PREFIX}/faces",
            "url_route": "adpipeline-insights",
            "destination": "nav",
            "category": "browse",
        }
    ]
