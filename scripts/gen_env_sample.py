"""Write .env.sample and docs/settings.md from the settings domains (every field, its description, its default).

Run after adding a setting: ``.venv/bin/python scripts/gen_env_sample.py``. tests/unit/test_settings.py fails when
.env.sample or docs/settings.md and the settings drift apart. The rendering lives in adpipeline/settings/reference.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adpipeline.settings.reference import main, render_docs, render_env_sample  # noqa: E402

render = render_env_sample  # the name tests/unit/test_settings.py loads

__all__ = ["render", "render_docs"]

if __name__ == "__main__":
    main()
