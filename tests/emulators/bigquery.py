"""Start the BigQuery emulator (bqemulator, installed in ``.venv-bq``) on 127.0.0.1 for tests.

Two roles in one file, so the launcher and what it launches stay together:

* imported by the tests (project venv): :func:`bigquery_emulator` starts ``.venv-bq/bin/python`` running *this
  file* as a script on two free ports, waits for ``/readyz``, yields the REST endpoint and stops the process;
* run as a script (emulator venv): patch three things in bqemulator (below), then run ``bqemulator start``.

The patches, all for bqemulator 1.4.0, each a small fix so that SQL real BigQuery accepts runs unchanged:

1. start-up runs ``INSTALL spatial; LOAD spatial`` and refuses to start when the extension cannot be downloaded
   (no setting for it; ``BQEMU_ENABLE_FORMAT_EXTENSIONS`` only covers avro). Offline, that step becomes
   best-effort: load the extension if already installed, else go on without GEOGRAPHY (no project SQL uses it);
2. parameter binding rewrote ``@name`` inside comments and string literals too (:func:`_patch_named_parameters`);
3. ``ARRAY_AGG(DISTINCT x IGNORE NULLS ...)`` failed to translate (:func:`_patch_array_agg_distinct_ignore_nulls`).

Only the standard library is imported at module level: the script role runs under the emulator's venv.

Set up the venv once with ``scripts/setup_bqemulator.sh``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Generator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("BQEMULATOR_VENV", ROOT / ".venv-bq"))
SETUP_HINT = "run scripts/setup_bqemulator.sh to create .venv-bq (the BigQuery emulator's venv)"


class EmulatorError(RuntimeError):
    """The emulator is missing or did not start."""


def emulator_python() -> Path:
    """The emulator venv's interpreter; :class:`EmulatorError` if the venv is missing."""
    python = VENV / "bin" / "python"
    if not python.exists():
        raise EmulatorError(f"BigQuery emulator venv not found at {VENV}: {SETUP_HINT}")
    return python


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as resp:  # noqa: S310 - 127.0.0.1 only
            return bool(resp.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def bigquery_emulator(project: str = "test-project", timeout_s: float = 60.0) -> Generator[str, None, None]:
    """Run the emulator for the duration of the block; yield its endpoint, e.g. ``http://127.0.0.1:40123``."""
    python = emulator_python()
    rest_port, grpc_port = _free_port(), _free_port()
    url = f"http://127.0.0.1:{rest_port}"
    env = {
        **os.environ,
        "BQEMU_ENABLE_FORMAT_EXTENSIONS": "false",  # avro: another download, not needed
        "BQEMU_LOG_LEVEL": os.environ.get("BQEMU_LOG_LEVEL", "warning"),
    }
    env.pop("PYTHONPATH", None)
    cmd = [
        str(python), str(Path(__file__).resolve()), "start",
        "--rest-host", "127.0.0.1", "--rest-port", str(rest_port),
        "--grpc-host", "127.0.0.1", "--grpc-port", str(grpc_port),
        "--ephemeral", "--project", project,
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

        def output() -> str:
            log.seek(0)
            return log.read().decode(errors="replace")[-4000:]

        try:
            deadline = time.monotonic() + timeout_s
            while not _ready(url):
                if proc.poll() is not None:
                    raise EmulatorError(f"bqemulator exited with {proc.returncode}:\n{output()}")
                if time.monotonic() > deadline:
                    raise EmulatorError(f"bqemulator not ready after {timeout_s}s:\n{output()}")
                time.sleep(0.2)
            yield url
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _patch_spatial_load() -> None:
    """Make bqemulator's ``INSTALL/LOAD spatial`` start-up step best-effort and download-free."""
    from bqemulator.storage.engine import DuckDBEngine  # type: ignore[import-not-found]  # in .venv-bq

    def _load_spatial(self: DuckDBEngine) -> None:
        try:
            self.connection.execute("LOAD spatial")  # only if it is already installed locally
        except Exception:  # noqa: BLE001 - GEOGRAPHY unsupported then, which the project never uses
            pass

    DuckDBEngine._load_spatial = _load_spatial


def _patch_named_parameters() -> None:
    """Bind ``@name`` / ``$name`` parameters only outside comments and string literals.

    bqemulator 1.4.0 rewrites every ``@name`` in the translated SQL to ``?``, including those inside comments
    (sqlglot keeps ``-- ...`` comments as ``/* ... */``) and string literals, so a file whose header comment
    mentions ``@start`` failed with "Parameter argument/count mismatch" or "Mixing named and positional
    parameters". BigQuery itself ignores both. Comments are dropped; strings are kept verbatim.
    """
    import re

    from bqemulator.sql import parameters  # type: ignore[import-not-found]

    segment = re.compile(r"('(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|/\*.*?\*/|--[^\n]*)", re.DOTALL)

    def _bind_named(sql: str, params: list[dict[str, Any]]) -> tuple[str, list[Any]]:
        by_name = {p["name"]: p for p in params}
        value_of = {n: parameters._extract_value(p) for n, p in by_name.items()}
        values: list[Any] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in value_of:
                return match.group(0)
            values.append(value_of[name])
            return parameters._placeholder_for(value_of[name], by_name[name])

        out = []
        for i, part in enumerate(segment.split(sql)):
            if i % 2 == 0:  # code between literals/comments
                out.append(re.sub(r"[@$](\w+)", replace, part))
            elif not part.startswith(("/*", "--")):  # a string literal or quoted identifier
                out.append(part)
            else:
                out.append(" ")
        return "".join(out), values

    parameters._bind_named = _bind_named


def _patch_array_agg_distinct_ignore_nulls() -> None:
    """``ARRAY_AGG(DISTINCT x IGNORE NULLS ...)``: filter on ``x``, not on ``DISTINCT x``.

    bqemulator 1.4.0 rewrites ``IGNORE NULLS`` to ``FILTER (WHERE NOT x IS NULL)`` but takes the aggregate's operand
    as ``x`` without unwrapping ``DISTINCT``, which fails with "Required keyword: 'this' missing for Not".
    """
    from bqemulator.sql.rewriter import aggregate_variants  # type: ignore[import-not-found]
    from sqlglot import exp  # type: ignore[import-not-found, unused-ignore]  # the emulator's own sqlglot

    def _filter_target(operand: Any) -> Any:
        if isinstance(operand, exp.Order):
            operand = operand.this
        if isinstance(operand, exp.Distinct) and len(operand.expressions) == 1:
            operand = operand.expressions[0]
        return operand

    aggregate_variants._filter_target = _filter_target


if __name__ == "__main__":  # under .venv-bq: ``python tests/emulators/bigquery.py start --rest-port ...``
    _patch_spatial_load()
    _patch_named_parameters()
    _patch_array_agg_distinct_ignore_nulls()
    from bqemulator.cli import main  # type: ignore[import-not-found]

    sys.exit(main())
