"""Insights: when feature_performance, creative_fatigue and feature_effects flag something, and the insights page's
paging and upload limit (adpipeline/insights/README.md)."""

from __future__ import annotations

from pydantic import Field

from adpipeline.settings.base import Domain


class InsightsSettings(Domain):
    """The analyses adp_final rebuilds and the Airflow UI page that shows them."""

    title = "Insights: analyses and the page"
    readme = "adpipeline/insights/README.md"

    feature_min_impressions: int = Field(1000, ge=0)
    """feature_performance flags a value only from this many impressions (and two creatives) on."""
    insights_page_size: int = Field(25, ge=1, le=500)
    """Rows per page on the insights page (faces, duplicate groups, features)."""
    insights_max_upload_bytes: int = Field(50 * 2**20, gt=0)
    """Largest photo or video accepted by the insights verify form, bytes (photos are also held to max_image_bytes)."""
    fatigue_min_drop: float = Field(0.2, ge=0, lt=1)
    """creative_fatigue flags a creative only where the recent CTR interval lies this share below the early one."""
    fatigue_min_impressions: int = Field(5000, ge=0)
    """creative_fatigue flags a creative only with this many impressions in each of its early and recent weeks."""
    effects_max_cells: int = Field(400_000, ge=1000)
    """feature_effects fits on at most this many (creative, campaign, week) cells, else on a sample of creatives."""
    effects_max_values: int = Field(40, ge=1)
    """feature_effects models at most this many values per feature (most impressions first)."""
