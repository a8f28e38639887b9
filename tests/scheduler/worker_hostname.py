"""``[core] hostname_callable`` for the Celery tier: each worker's name (``CELERY_TIER_WORKER_NAME``), so the task
instances say which of two workers on one machine ran them."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("CELERY_TIER_WORKER_NAME") or socket.getfqdn()
