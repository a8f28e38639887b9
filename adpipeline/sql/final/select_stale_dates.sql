-- Dates of ads_enriched to rebuild besides the run's window: imported dates whose partition is missing or holds a
-- different number of rows than the source (a lost asset event, a late source load), and dates of ads whose
-- creative's upstream facts changed after the partition was built (a new image joining an old duplicate group,
-- features collected days later from a Batch job, a face merged into another, a creative imported after its ads).
-- Reads only the key and fact columns. One row per date.
WITH source_days AS (
  SELECT date, COUNT(*) AS n_source
  FROM {{ source_ads }}
  WHERE date <= (SELECT MAX(last_seen_date) FROM {{ creatives }})
  GROUP BY date
),
built_days AS (
  SELECT date, COUNT(*) AS n_built FROM {{ ads_enriched }} GROUP BY date
),
face_summary AS (
  SELECT creative_id, ARRAY_AGG(DISTINCT face_id IGNORE NULLS ORDER BY face_id) AS face_ids
  FROM {{ face_detections }}
  GROUP BY creative_id
),
current_facts AS (
  SELECT
    c.url,
    c.media_type,
    CONCAT(
      c.creative_id, '|', COALESCE(f.status, ''), '|', COALESCE(g.group_id, ''), '|',
      COALESCE(g.canonical_creative_id, c.creative_id), '|', COALESCE(fi.provider, fv.provider, ''), '|',
      COALESCE(fi.model, fv.model, ''), '|', COALESCE(fi.status, fv.status, ''), '|',
      COALESCE(ARRAY_TO_STRING(fs.face_ids, ','), '')
    ) AS facts
  FROM {{ creatives }} AS c
  LEFT JOIN {{ media_fetches }} AS f ON f.creative_id = c.creative_id
  LEFT JOIN {{ duplicate_groups }} AS g ON g.creative_id = c.creative_id
  LEFT JOIN {{ image_features }} AS fi ON fi.creative_id = COALESCE(g.canonical_creative_id, c.creative_id)
  LEFT JOIN {{ video_features }} AS fv ON fv.creative_id = c.creative_id
  LEFT JOIN face_summary AS fs ON fs.creative_id = c.creative_id
),
built_facts AS (
  SELECT DISTINCT
    date,
    url,
    media_type,
    CONCAT(
      COALESCE(creative_id, ''), '|', COALESCE(fetch_status, ''), '|', COALESCE(duplicate_group_id, ''), '|',
      COALESCE(canonical_creative_id, ''), '|', COALESCE(feature_provider, ''), '|', COALESCE(feature_model, ''), '|',
      COALESCE(feature_status, ''), '|', COALESCE(ARRAY_TO_STRING(face_ids, ','), '')
    ) AS facts
  FROM {{ ads_enriched }}
  WHERE url IS NOT NULL
)
SELECT s.date
FROM source_days AS s
LEFT JOIN built_days AS b ON b.date = s.date
WHERE b.n_built IS NULL OR b.n_built != s.n_source
UNION DISTINCT
SELECT b.date
FROM built_facts AS b
JOIN current_facts AS c ON c.url = b.url AND c.media_type = b.media_type
WHERE b.facts != c.facts
ORDER BY date
