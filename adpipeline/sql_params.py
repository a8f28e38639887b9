"""Representative parameters of the SQL files: the ``-- params:`` convention of their leading comment block.

The parity tests (tests/integration/test_bigquery_backend.py) run every ``sql/**/*.sql`` file with these values on
both backends, and ``adpipeline check --bigquery-dry-run`` sends every file to BigQuery as a dry-run job with them.
Every file gets :data:`DEFAULT_PARAMS` and :data:`COMMON_PARAMS`; a file declares more (or overrides those) with
one or more lines ``-- params: name=TYPE:value, other=TYPE:value``. TYPE is STRING, INT64, FLOAT64, BOOL
(true/false), DATE (YYYY-MM-DD), TIMESTAMP (ISO 8601, UTC if no offset), or ARRAY<T> of one of those with items
separated by ``|`` (an empty value is an empty array). Values cannot contain ``,`` or ``|``.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

DEFAULT_PARAMS: dict[str, Any] = {"start": dt.date(2024, 1, 1), "end": dt.date(2024, 1, 31)}
COMMON_PARAMS: dict[str, Any] = {
    "refresh": False,
    "backend": "dlib",
    "model_id": "hog-128",
    "provider": "offline",
    "model": "rapidocr",
    "prompt_version": "v1",
}
"""Parameters many stage queries share, with values that match the parity tests' fixture data."""

_PARAMS_LINE = re.compile(r"^\s*--\s*params\s*:\s*(.*)$", re.IGNORECASE)
_ARRAY = re.compile(r"^ARRAY\s*<\s*(\w+)\s*>$", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")
_PARAM = re.compile(r"(?<![@\w])@(\w+)")


def _convert(kind: str, text: str) -> Any:
    kind = kind.upper()
    if kind == "STRING":
        return text
    if kind in ("INT64", "INTEGER"):
        return int(text)
    if kind in ("FLOAT64", "FLOAT"):
        return float(text)
    if kind in ("BOOL", "BOOLEAN"):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"BOOL param must be true/false, got {text!r}")
        return text.lower() == "true"
    if kind == "DATE":
        return dt.date.fromisoformat(text)
    if kind == "TIMESTAMP":
        value = dt.datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    raise ValueError(f"unknown param type {kind!r}")


def parse_params(sql: str) -> dict[str, Any]:
    """The ``-- params:`` declarations of a file's leading comment block (see the module docstring)."""
    params: dict[str, Any] = {}
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break  # the leading comment block ends at the first SQL line
        match = _PARAMS_LINE.match(stripped)
        if not match:
            continue
        for item in filter(None, (part.strip() for part in match.group(1).split(","))):
            name, sep, typed = item.partition("=")
            kind, sep2, value = typed.partition(":")
            if not (sep and sep2 and name.strip().isidentifier()):
                raise ValueError(f"bad param declaration {item!r}: expected name=TYPE:value")
            kind, value = kind.strip(), value.strip()
            array = _ARRAY.match(kind)
            if array:
                params[name.strip()] = [_convert(array.group(1), v.strip()) for v in value.split("|")] if value else []
            else:
                params[name.strip()] = _convert(kind, value)
    return params


def file_params(path: Path) -> dict[str, Any]:
    """Every parameter a file may use: the defaults, the common ones and its own declarations."""
    return {**DEFAULT_PARAMS, **COMMON_PARAMS, **parse_params(path.read_text())}


def used_params(sql: str) -> set[str]:
    """The ``@name`` parameters a query refers to outside ``--`` comments."""
    return set(_PARAM.findall(_COMMENT.sub("", sql)))
