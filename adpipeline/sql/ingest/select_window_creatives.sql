-- One row per distinct creative URL used by source ads in the window [@start, @end], with the dates it was seen.
-- Source table and column names come from settings (ADP_SOURCE_*).
SELECT
  url,
  media_type,
  MIN(ad_date) AS first_seen_date,
  MAX(ad_date) AS last_seen_date
FROM (
  SELECT image_url AS url, 'image' AS media_type, date AS ad_date
  FROM {{ source_ads }}
  WHERE date BETWEEN @start AND @end AND image_url IS NOT NULL
  UNION ALL
  SELECT video_url AS url, 'video' AS media_type, date AS ad_date
  FROM {{ source_ads }}
  WHERE date BETWEEN @start AND @end AND video_url IS NOT NULL
)
GROUP BY url, media_type
ORDER BY url, media_type
