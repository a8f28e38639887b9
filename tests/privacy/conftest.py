"""Fixtures for the privacy tests: the e2e small demo slice, and the BigQuery emulator of the integration tests."""

from tests.e2e.conftest import small_sample  # noqa: F401
from tests.integration.conftest import bq_emulator, pytest_configure  # noqa: F401
