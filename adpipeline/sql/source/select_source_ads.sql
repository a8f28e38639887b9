-- The source ads table in our own column names and types (the column names come from ADP_SOURCE_* settings).
-- Other SQL files select from it through the source_ads placeholder.
SELECT
  CAST({{ col_ad_id }} AS STRING) AS ad_id,
  CAST({{ col_date }} AS DATE) AS date,
  CAST({{ col_campaign }} AS STRING) AS campaign,
  NULLIF(TRIM({{ col_image_url }}), '') AS image_url,
  NULLIF(TRIM({{ col_video_url }}), '') AS video_url,
  COALESCE(CAST({{ col_impressions }} AS INT64), 0) AS impressions,
  COALESCE(CAST({{ col_clicks }} AS INT64), 0) AS clicks,
  COALESCE(CAST({{ col_spend }} AS FLOAT64), 0) AS spend,
  COALESCE(CAST({{ col_conversions }} AS INT64), 0) AS conversions
FROM {{ source }}
