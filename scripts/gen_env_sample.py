"""Write .env.sample from the Settings model (every field, its description, its default).

Run after adding a setting: ``.venv/bin/python scripts/gen_env_sample.py``. tests/unit/test_settings.py fails when
.env.sample and Settings drift apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adpipeline.settings import ENV_PREFIX, Settings  # noqa: E402

HEADER = """\
# adpipeline settings. Copy to .env and edit; every variable is optional (the defaults run everything locally:
# DuckDB file, local-folder bucket, offline features, dlib faces). Unknown ADP_ names are rejected.
# Commented-out lines show settings with no default (or secrets); uncomment to set them.
"""


def render() -> str:
    lines = [HEADER]
    for name, field in Settings.model_fields.items():
        key = f"{ENV_PREFIX}{name}".upper()
        description = (field.description or "").strip()
        if not description:
            raise SystemExit(f"Settings.{name} has no description; add Field(description=...)")
        lines.append(f"# {description}")
        default = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()
        if default is None or "secret" in str(field.annotation).lower():
            lines.append(f"# {key}=")
        elif isinstance(default, list):
            lines.append(f"{key}={json.dumps(default)}")
        elif isinstance(default, bool):
            lines.append(f"{key}={'true' if default else 'false'}")
        else:
            lines.append(f"{key}={default}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parents[1] / ".env.sample"
    target.write_text(render())
    print(f"wrote {target}")
