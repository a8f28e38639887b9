"""Privacy: how long face crops and vectors are kept, and whether the DuckDB file is rewritten after a deletion
(README "Deleting a person", adpipeline/faces/README.md "Privacy")."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class PrivacySettings(Domain):
    """Retention of face data and the storage clean-up after a person is deleted."""

    title = "Privacy and retention"
    readme = "README.md#deleting-a-person"

    face_retention_days: int = Field(365, ge=0, le=36_500)
    """Days after a face's last ad before adp_privacy removes its crops and vectors (ids and counts stay); 0: off."""
    privacy_compact_duckdb: bool = True
    """After a deletion, rewrite the DuckDB file: DuckDB keeps deleted rows' bytes in freed blocks otherwise."""
