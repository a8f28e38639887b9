-- face_performance: per unique face, the ads whose video shows it and their metrics; plus one '__no_face__'
-- baseline row for ads whose video was analysed and showed nobody. An ad's metrics are summed over its days first.
-- n_ads / n_ads_with_impressions say how many ads each figure rests on (the per-ad CTR average, median and spread use
-- the ads with impressions); support: 'single_ad' (1 ad), 'thin' (2-4), 'ok' (5 or more) - rank faces on 'ok' only.
WITH per_ad AS (
  SELECT
    c.creative_id,
    a.ad_id,
    SUM(a.impressions) AS impressions,
    SUM(a.clicks) AS clicks,
    SUM(a.spend) AS spend,
    SUM(a.conversions) AS conversions
  FROM {{ source_ads }} AS a
  JOIN {{ creatives }} AS c ON c.url = a.video_url AND c.media_type = 'video'
  GROUP BY c.creative_id, a.ad_id
),
face_ads AS (
  SELECT DISTINCT d.face_id, p.*
  FROM (SELECT DISTINCT creative_id, face_id FROM {{ face_detections }} WHERE face_id IS NOT NULL) AS d
  JOIN per_ad AS p ON p.creative_id = d.creative_id
  UNION ALL
  SELECT '__no_face__' AS face_id, p.*
  FROM per_ad AS p
  JOIN {{ face_video_status }} AS s ON s.creative_id = p.creative_id AND s.status = 'no_faces'
),
with_ctr AS (
  SELECT
    *,
    SAFE_DIVIDE(clicks, impressions) AS ad_ctr,
    PERCENTILE_CONT(SAFE_DIVIDE(clicks, impressions), 0.5) OVER (PARTITION BY face_id) AS median_ctr
  FROM face_ads
)
SELECT
  w.face_id,
  COUNT(DISTINCT w.creative_id) AS n_videos,
  COUNT(DISTINCT w.ad_id) AS n_ads,
  SUM(w.impressions) AS impressions,
  SUM(w.clicks) AS clicks,
  SUM(w.spend) AS spend,
  SUM(w.conversions) AS conversions,
  SAFE_DIVIDE(SUM(w.clicks), SUM(w.impressions)) AS ctr,
  SAFE_DIVIDE(SUM(w.conversions), SUM(w.clicks)) AS cvr,
  SAFE_DIVIDE(SUM(w.spend), SUM(w.conversions)) AS cpa,
  AVG(w.ad_ctr) AS avg_ad_ctr,
  ANY_VALUE(w.median_ctr) AS median_ad_ctr,
  STDDEV_SAMP(w.ad_ctr) AS stddev_ad_ctr,
  ANY_VALUE(f.best_crop_path) AS best_crop_path,
  COUNTIF(w.impressions > 0) AS n_ads_with_impressions,
  CASE WHEN COUNT(DISTINCT w.ad_id) >= 5 THEN 'ok' WHEN COUNT(DISTINCT w.ad_id) >= 2 THEN 'thin' ELSE 'single_ad' END AS support
FROM with_ctr AS w
LEFT JOIN {{ faces }} AS f ON f.face_id = w.face_id
GROUP BY w.face_id
