"""Google credentials for BigQuery and GCS: an Airflow connection through the Google provider's hook, else ADC.

Where the credentials come from, in order:

1. an Airflow connection (``gcp_conn_id`` setting, default ``google_cloud_default``) read by the Google provider's
   ``GoogleBaseHook``: key file, key JSON, credential config, impersonation chain, anonymous: whatever the connection
   says. Looked up inside an Airflow task (the task runner exports ``AIRFLOW_CTX_DAG_ID``), or anywhere when the
   connection is given as an ``AIRFLOW_CONN_<ID>`` environment variable;
2. otherwise Application Default Credentials (the CLI without Airflow, or a task whose connection does not exist):
   the client libraries find them themselves (``None`` here).

Emulators (``BIGQUERY_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``) change only the endpoint, never the choice above.

This is the one module besides ``airflow_adapter`` that imports Airflow, and only the provider's hook, only when a
connection is to be read: the package still imports and runs without Airflow installed (``adpipeline`` without the
``airflow`` extra).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

log = logging.getLogger("adpipeline")

DEFAULT_GCP_CONN_ID = "google_cloud_default"
TASK_CONTEXT_ENV = "AIRFLOW_CTX_DAG_ID"


@dataclass(frozen=True)
class GoogleCredentials:
    """Credentials and project for a Google client. ``credentials is None`` means: let the library use ADC."""

    credentials: Credentials | None
    project: str | None
    source: str
    """``connection:<id>`` or ``adc`` (for logs and tests; never holds a secret)."""


ADC = GoogleCredentials(credentials=None, project=None, source="adc")


def connection_env_var(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from: ``AIRFLOW_CONN_<ID>``."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def _connection_reachable(conn_id: str) -> bool:
    """Whether looking the connection up makes sense here: inside a task (metadata DB / secrets backends through
    the task runner), or given in the environment. Outside both (the CLI), a lookup would open a metadata database
    that may not exist, so ADC is used."""
    return TASK_CONTEXT_ENV in os.environ or connection_env_var(conn_id) in os.environ


def google_credentials(conn_id: str | None) -> GoogleCredentials:
    """Credentials from the Airflow connection ``conn_id`` when it can be read, else :data:`ADC`.

    A missing connection inside a task falls back to ADC (logged): on Cloud Composer and GKE the environment's
    service account is ADC, and ``google_cloud_default`` need not exist. A connection that exists but is broken
    (unreadable key, bad JSON) raises: a wrong credential must not silently become another identity.
    """
    if not conn_id or not _connection_reachable(conn_id):
        return ADC
    try:
        # The provider is part of the ``airflow`` extra; without it there is no connection to read.
        from airflow.providers.common.compat.sdk import AirflowNotFoundException
        from airflow.providers.google.common.hooks.base_google import GoogleBaseHook
    except ImportError:
        log.info("Google provider not installed; using Application Default Credentials")
        return ADC
    try:
        # Scopes: the connection's ``scope`` extra, else cloud-platform (covers BigQuery and GCS). The hook reads
        # the connection when it is made.
        hook = GoogleBaseHook(gcp_conn_id=conn_id)
        credentials, project = hook.get_credentials_and_project_id()
    except AirflowNotFoundException:
        log.info("no Airflow connection %r; using Application Default Credentials", conn_id)
        return ADC
    return GoogleCredentials(credentials=credentials, project=project or None, source=f"connection:{conn_id}")
