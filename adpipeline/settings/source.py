"""The source table: where the raw ads are and what its columns are called."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class SourceSettings(Domain):
    """The raw ads table adp_import reads, and the name of each column it uses."""

    title = "Source table"
    readme = "README.md#settings"

    source_table: str = Field("raw_ads", description="Raw ads table (name in the warehouse, or project.dataset.table).")
    source_ad_id_column: str = "ad_id"
    """Source table column: ad id."""
    source_date_column: str = "date"
    """Source table column: date of the row (DATE or TIMESTAMP)."""
    source_image_url_column: str = "image_url"
    """Source table column: image URL (https://, gs:// or a local path)."""
    source_video_url_column: str = "video_url"
    """Source table column: video URL."""
    source_campaign_column: str = "campaign"
    """Source table column: campaign name."""
    source_impressions_column: str = "impressions"
    """Source table column: impressions."""
    source_clicks_column: str = "clicks"
    """Source table column: clicks."""
    source_spend_column: str = "spend"
    """Source table column: spend."""
    source_conversions_column: str = "conversions"
    """Source table column: conversions."""
