-- Data checks on ads_enriched: its row count equals the source rows it covers, and (ad_id, date) is unique.
SELECT
  (SELECT COUNT(*) FROM {{ ads_enriched }}) AS n_rows,
  (
    SELECT COUNT(*) FROM {{ source_ads }}
    WHERE date <= (SELECT MAX(last_seen_date) FROM {{ creatives }})
  ) AS n_expected,
  (
    SELECT COUNT(*) FROM (
      SELECT ad_id, date FROM {{ ads_enriched }} GROUP BY ad_id, date HAVING COUNT(*) > 1
    )
  ) AS n_duplicate_keys,
  -- COALESCE: an empty table (a final run before anything was imported) counts 0, not NULL.
  (SELECT COALESCE(COUNTIF(creative_id IS NULL AND url IS NOT NULL), 0) FROM {{ ads_enriched }}) AS n_unmatched_creatives
