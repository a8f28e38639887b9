-- The cells the adjusted feature-effects model is fitted on: impressions and clicks per creative (canonical of a
-- duplicate group; a video itself), campaign and week. Grain: one row per (unit_id, campaign, week).
-- params: unit_cut=STRING:
-- (unit_cut: '' keeps all; else only units whose id's first four hex digits sort below it, a fixed sample of whole
-- creatives. Weeks are Monday-based, numbered from 1970-01-05.)
SELECT
  COALESCE(canonical_creative_id, creative_id) AS unit_id,
  COALESCE(campaign, '(none)') AS campaign,
  DIV(DATE_DIFF(date, DATE '1970-01-05', DAY), 7) AS week,
  SUM(impressions) AS n,
  SUM(LEAST(clicks, impressions)) AS k
FROM {{ ads_enriched }}
WHERE creative_id IS NOT NULL AND impressions > 0
  AND (@unit_cut = '' OR SUBSTR(COALESCE(canonical_creative_id, creative_id), 1, 4) < @unit_cut)
GROUP BY unit_id, campaign, week
