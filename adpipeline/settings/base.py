"""The base of every settings domain: a plain pydantic model whose fields :class:`adpipeline.settings.Settings` reads.

A domain is a mixin: it holds one area's fields, their checks and the properties derived from them, and reads no
environment on its own. ``Settings`` composes them all with ``BaseSettings``, so attribute access stays flat
(``settings.ocr_threads``) and every environment name stays ``ADP_`` + the field name.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Domain(BaseModel):
    """One area's settings. ``title`` heads its section in .env.sample and docs/settings.md; ``readme`` says more."""

    model_config = ConfigDict(validate_default=True, use_attribute_docstrings=True)

    title: ClassVar[str]
    readme: ClassVar[str]
