"""Terminal output: tables fit 80 columns (what Rich assumes when piped) without cut headers; help is plain text."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from adpipeline.cli import app
from adpipeline.console_tables import FitTable
from adpipeline.report import _table

FACES = pd.DataFrame(
    [
        {
            "face_id": "f_1a2b3c4d5e6f",
            "n_videos": 3,
            "n_ads": 120,
            "impressions": 123456,
            "clicks": 2345,
            "ctr_pct": 1.9,
            "ci_low_pct": 1.5,
            "ci_high_pct": 2.3,
            "lift_pct": 12.5,
            "flag": "above",
            "best_crop_path": "faces/crops/0123456789abcdef0123456789abcdef.jpg",
        }
    ]
)


def _render(renderable: object, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)  # a file, not a terminal: what a pipe gets
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [200, 120, 80, 60, 40])
def test_no_header_or_cell_is_cut(width: int) -> None:
    out = _render(_table("faces ranked", FACES), width)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= width
    words = out.replace("\n", " ").split()
    for column in FACES.columns:
        assert column in words, (column, out)
    assert "f_1a2b3c4d5e6f" in out


def test_layout_follows_the_width() -> None:
    table = FitTable("t", ["a_long_header", "b", "notes"], [["1", "2", "some words that can wrap " * 3]])
    console = Console(file=io.StringIO())
    assert table.layout(console, 200) == "whole"
    assert table.layout(console, 40) == "wrapped"
    assert table.layout(console, 12) == "records"
    wrapped = _render(table, 40)
    assert "a_long_header" in wrapped and "…" not in wrapped


def test_help_is_plain_text() -> None:
    runner = CliRunner()
    commands = [None, *(c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands)]
    for command in commands:
        result = runner.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (command, result.output)
        assert "``" not in result.output, (command, result.output)
