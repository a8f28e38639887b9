-- One row per distinct creative URL used by source ads in the window [@start, @end], with the dates it was seen.
-- Source table and column names come from settings (ADP_SOURCE_*).
SELECT
  url,
  media_type,
  MIN(ad_date) AS first_seen_date,
  MAX(ad_date) AS last_seen_date
FROM (
  SELECT TRIM({{ col_image_url }}) AS url, 'image' AS media_type, CAST({{ col_date }} AS DATE) AS ad_date
  FROM {{ source }}
  WHERE CAST({{ col_date }} AS DATE) BETWEEN @start AND @end
    AND {{ col_image_url }} IS NOT NULL AND TRIM({{ col_image_url }}) != ''
  UNION ALL
  SELECT TRIM({{ col_video_url }}) AS url, 'video' AS media_type, CAST({{ col_date }} AS DATE) AS ad_date
  FROM {{ source }}
  WHERE CAST({{ col_date }} AS DATE) BETWEEN @start AND @end
    AND {{ col_video_url }} IS NOT NULL AND TRIM({{ col_video_url }}) != ''
)
GROUP BY url, media_type
ORDER BY url, media_type
