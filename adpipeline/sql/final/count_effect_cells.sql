-- How many (unit_id, campaign, week) cells sql/final/select_effect_cells.sql would return over all units.
SELECT COUNT(*) AS n_cells, COUNT(DISTINCT unit_id) AS n_units
FROM (
  SELECT DISTINCT
    COALESCE(canonical_creative_id, creative_id) AS unit_id,
    COALESCE(campaign, '(none)') AS campaign,
    DIV(DATE_DIFF(date, DATE '1970-01-05', DAY), 7) AS week
  FROM {{ ads_enriched }}
  WHERE creative_id IS NOT NULL AND impressions > 0
)
