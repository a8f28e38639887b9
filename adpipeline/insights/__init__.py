"""The insights page (FastAPI app mounted in the Airflow api-server by ``plugins/adpipeline_insights.py``)."""

from adpipeline.insights.app import create_app

__all__ = ["create_app"]
