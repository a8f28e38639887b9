"""Fault points for the Celery tier's fault drill (tests/scheduler/test_celery_tier.py): a no-op in production.

A stage calls :func:`fault_point` at a place where a crash matters (rows written, not yet marked done). Nothing
happens unless the environment names a fault folder, ``ADPTEST_FAULT_DIR`` (not ``ADP_``: the settings reject
unknown ``ADP_`` names), and the test has armed the point there by creating ``<dir>/<name>.armed``; the armed file's
text is the action:

* ``kill``: the task process kills itself with SIGKILL (no ``finally``, no flush: what a crash or an OOM kill does);
* ``hold`` (optionally ``hold worker-1``, only in the worker whose ``CELERY_TIER_WORKER_NAME`` matches): the task
  waits, at most ``ADPTEST_FAULT_HOLD_S`` seconds (default 600), until ``<dir>/<name>.release`` exists, so the
  test can kill its worker while it is known to be in the middle of its work.

A point fires once: the first task to reach it creates ``<dir>/<name>.fired`` (exclusively, holding the pid and the
worker name) and later tasks, the retry of the one killed included, pass through.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("adpipeline")

FAULT_DIR_ENV = "ADPTEST_FAULT_DIR"
HOLD_S_ENV = "ADPTEST_FAULT_HOLD_S"
WORKER_ENV = "CELERY_TIER_WORKER_NAME"


def fault_point(name: str) -> None:
    """Fire the armed fault ``name`` once (see the module docstring); otherwise return at once."""
    folder = os.environ.get(FAULT_DIR_ENV)
    if not folder:
        return
    root = Path(folder)
    armed = root / f"{name}.armed"
    try:
        action = armed.read_text().split()
    except FileNotFoundError:
        return
    worker = os.environ.get(WORKER_ENV, "")
    if not action or (len(action) > 1 and action[1] != worker):
        return
    try:
        fd = os.open(root / f"{name}.fired", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps({"pid": os.getpid(), "worker": worker, "action": action[0]}))
    log.warning("fault point %s: %s (pid %d, worker %s)", name, action[0], os.getpid(), worker or "-")
    if action[0] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action[0] == "hold":
        deadline = time.monotonic() + float(os.environ.get(HOLD_S_ENV, "600"))
        while time.monotonic() < deadline and not (root / f"{name}.release").exists():
            time.sleep(0.5)
