"""docs/tables.md: every output table and what each column means, generated from the row models.

The same descriptions reach BigQuery (table and column descriptions, :mod:`adpipeline.warehouse.bigquery`), so the
page, the console and the code cannot disagree. Regenerate with ``python -m adpipeline.tables_reference``;
tests/unit/test_tables_reference.py fails when the page is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adpipeline.tables import TABLES, TableSpec
from adpipeline.warehouse import schema

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tables.md"
WRITES = {
    "merge": "MERGE on the key (idempotent)",
    "rebuild": "rebuilt from its inputs",
    "source": "the source table (loaded by the demo / `adpipeline load-csv`)",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "—"


def _table(spec: TableSpec) -> list[str]:
    lines = [f"## `{spec.name}`", "", _cell(schema.table_description(spec.model)), ""]
    facts = [f"key `{', '.join(spec.key)}`", f"write: {WRITES[spec.write]}"]
    if spec.partition_by:
        facts.append(f"partitioned by `{spec.partition_by}` (BigQuery)")
    facts.append(f"clustered by `{', '.join(spec.clustering)}` (BigQuery)")
    lines += ["; ".join(facts) + ".", "", "| column | type | mode | meaning |", "|---|---|---|---|"]
    for column in schema.columns(spec.model):
        lines.append(f"| `{column.name}` | {column.bq_type} | {column.mode} | {_cell(column.description)} |")
    return [*lines, ""]


def render() -> str:
    """The page's Markdown."""
    lines = [
        "# Tables",
        "",
        "Every table adpipeline writes, with its key and what each column means. Generated from the row models in",
        "`adpipeline/tables.py` (the same text is the BigQuery table and column descriptions): do not edit by hand,",
        "run `.venv/bin/python -m adpipeline.tables_reference`.",
        "",
        "Contents: " + ", ".join(f"[`{name}`](#{name})" for name in TABLES),
        "",
    ]
    for spec in TABLES.values():
        lines += _table(spec)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)
