"""The README's "How it is put together" block lists every top-level module and package of ``adpipeline/``, and
nothing that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "adpipeline"


def _listed() -> set[str]:
    """The names in the README's code block under "How it is put together", the lines indented under adpipeline/."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("How it is put together", 1)[1]
    block = section.split("```", 2)[1]
    names: set[str] = set()
    inside = False
    for line in block.splitlines():
        if line.startswith("adpipeline/"):
            inside = True
            continue
        if inside and line and not line.startswith(" "):
            break  # back at the top level (tests/, bench/ ...)
        match = re.match(r"^  (\w+)(?:\.py|/)\s", line + " ")
        if inside and match:
            names.add(match.group(1))
    return names


def _present() -> set[str]:
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and ((p / "__init__.py").exists() or p.name == "sql")}
    return modules | packages


def test_readme_lists_every_top_level_module() -> None:
    listed, present = _listed(), _present()
    assert not present - listed, f"README's module list lacks: {sorted(present - listed)}"
    assert not listed - present, f"README's module list names what is gone: {sorted(listed - present)}"
