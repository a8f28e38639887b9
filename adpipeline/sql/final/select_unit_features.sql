-- Each creative's feature values in long form, named as feature_performance names them (both use the macros in
-- sql/macros/features.sql.jinja): one row per (unit_id, feature, value). Read by the adjusted feature-effects model.
-- params: unit_cut=STRING:
{% from "features.sql.jinja" import unit_feature_columns, feature_keys %}
WITH per_creative AS (
  SELECT
    COALESCE(canonical_creative_id, creative_id) AS unit_id,
    {{ unit_feature_columns() }}
  FROM {{ ads_enriched }}
  WHERE creative_id IS NOT NULL AND impressions > 0
    AND (@unit_cut = '' OR SUBSTR(COALESCE(canonical_creative_id, creative_id), 1, 4) < @unit_cut)
  GROUP BY unit_id
),
{{ feature_keys('per_creative') }}
SELECT unit_id, feature, value FROM feature_keys
