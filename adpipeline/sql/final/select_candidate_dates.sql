-- Dates ads_enriched may hold: every source date up to the last imported date (what select_ads_enriched.sql builds)
-- and every date the table holds now (rows a rebuild would no longer make are out of step too). Reads only the date
-- columns. One row per date.
SELECT DISTINCT date FROM {{ source_ads }} WHERE date <= (SELECT MAX(last_seen_date) FROM {{ creatives }})
UNION DISTINCT
SELECT DISTINCT date FROM {{ ads_enriched }}
ORDER BY date
