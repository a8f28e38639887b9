""".env.sample and docs/settings.md, generated from the settings domains (every field, its default, its comment).

Regenerate both with ``.venv/bin/python scripts/gen_env_sample.py`` (or ``python -m adpipeline.settings.reference``)
after adding or changing a setting; tests/unit/test_settings.py fails when either is out of date.
"""

from __future__ import annotations

import json
import sys
import typing
from pathlib import Path

import annotated_types
from pydantic.fields import FieldInfo

from adpipeline.settings import DOMAINS, ENV_PREFIX, Domain

ROOT = Path(__file__).resolve().parents[2]
ENV_SAMPLE = ROOT / ".env.sample"
PAGE = ROOT / "docs" / "settings.md"

HEADER = """\
# adpipeline settings. Copy to .env and edit; every variable is optional (the defaults run everything locally:
# DuckDB file, local-folder bucket, offline features, dlib faces). Unknown ADP_ names are rejected.
# Commented-out lines show settings with no default (or secrets); uncomment to set them.
"""


def env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name}".upper()


def _description(domain: type[Domain], name: str, field: FieldInfo) -> str:
    description = (field.description or "").strip()
    if not description:
        raise SystemExit(f"{domain.__name__}.{name} has no description; add a docstring or Field(description=...)")
    return description


def _default(field: FieldInfo) -> object:
    if field.default_factory is not None:  # then ``default`` is pydantic's "undefined" marker
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _is_secret(field: FieldInfo) -> bool:
    return "secret" in str(field.annotation).lower()


def _value(default: object) -> str:
    if isinstance(default, list):
        return json.dumps(default)
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def _env_lines(domain: type[Domain]) -> list[str]:
    lines = [f"# --- {domain.title} ---"]
    for name, field in domain.model_fields.items():
        lines.append(f"# {_description(domain, name, field)}")
        default = _default(field)
        if default is None or _is_secret(field):
            lines.append(f"# {env_name(name)}=")
        else:
            lines.append(f"{env_name(name)}={_value(default)}")
    return lines


def render_env_sample() -> str:
    """.env.sample: per domain, each setting's comment and its default (commented out when it has none)."""
    sections = ["\n".join(_env_lines(domain)) for domain in DOMAINS]
    return HEADER + "\n" + "\n\n".join(sections) + "\n"


_BOUNDS = ((annotated_types.Ge, ">="), (annotated_types.Gt, ">"), (annotated_types.Le, "<="), (annotated_types.Lt, "<"))


def _choices(annotation: object) -> list[object]:
    """The values of a ``Literal[...]`` annotation (also inside ``Literal[...] | None``); else none."""
    for part in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(part) is typing.Literal:
            return list(typing.get_args(part))
    return []


def _allowed(field: FieldInfo) -> str:
    """The values a field accepts, as far as its type and bounds say: choices, or a range."""
    if choices := _choices(field.annotation):
        return ", ".join(f"`{choice}`" for choice in choices)
    bounds = [
        f"{sign} {getattr(meta, kind.__name__.lower()):,}"
        for meta in field.metadata
        for kind, sign in _BOUNDS
        if isinstance(meta, kind)
    ]
    return ", ".join(bounds)


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, and ``<`` so that ``<home>`` shows instead of vanishing as HTML."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ") or "—"


def _link(path: str) -> str:
    return path.removeprefix("docs/") if path.startswith("docs/") else f"../{path}"


def _doc_lines(domain: type[Domain]) -> list[str]:
    module = domain.__module__.replace(".", "/") + ".py"
    lines = [
        f"## {domain.title}",
        "",
        f"{_cell((domain.__doc__ or '').strip())} `{domain.__name__}` in [`{module}`](../{module}); "
        f"more in [{domain.readme}]({_link(domain.readme)}).",
        "",
        "| variable | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in domain.model_fields.items():
        default = _default(field)
        shown = "secret" if _is_secret(field) else "none" if default is None else f"`{_value(default)}`"
        meaning = _cell(_description(domain, name, field))
        lines.append(f"| `{env_name(name)}` | {shown} | {_allowed(field) or '—'} | {meaning} |")
    return [*lines, ""]


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def render_docs() -> str:
    """docs/settings.md: one table per domain (variable, default, allowed values, meaning)."""
    lines = [
        "# Settings",
        "",
        "Every `ADP_*` environment variable (or `.env` line), per domain, with its default, the values it accepts and",
        "what it does. Generated from the domain classes in `adpipeline/settings/` (the attribute is the variable",
        "without `ADP_`, in lower case: `settings.ocr_threads`), like `.env.sample`: do not edit by hand, run",
        "`.venv/bin/python scripts/gen_env_sample.py`. Unknown `ADP_` names are rejected.",
        "",
        "Contents: " + ", ".join(f"[{domain.title}](#{_anchor(domain.title)})" for domain in DOMAINS),
        "",
    ]
    for domain in DOMAINS:
        lines += _doc_lines(domain)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    for target, text in ((ENV_SAMPLE, render_env_sample()), (PAGE, render_docs())):
        target.write_text(text)
        print(f"wrote {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
