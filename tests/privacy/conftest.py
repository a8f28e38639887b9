"""The e2e fixtures (the small demo slice) for the privacy tests."""

from tests.e2e.conftest import small_sample  # noqa: F401
