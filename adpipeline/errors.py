"""Errors that say the set-up is wrong (a setting, a missing model file), as opposed to bad input or a flaky
service: retrying a task cannot fix them, so the Airflow adapter fails such a task at once, without retries."""

from __future__ import annotations


class ConfigurationError(RuntimeError):
    """A setting, a connection or an installation problem; the message says what to change."""


class FaceEngineUnavailable(ConfigurationError):
    """The configured face backend cannot run here (missing package or model files). The message says what to do.
    Also importable from ``adpipeline.faces.engine``; defined here so the detector modules that engine loads can
    raise it without importing engine back."""


def is_configuration_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is a configuration error: ours, or invalid settings."""
    from pydantic import ValidationError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConfigurationError | ValidationError):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
