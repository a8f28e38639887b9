-- One page of the faces leaderboard: face_performance with the CTR interval, lift and flag of feature_performance
-- (feature 'face'), best CTR first.
-- params: limit=INT64:25, offset=INT64:0
SELECT
  fp.face_id,
  fp.n_videos,
  fp.n_ads,
  fp.impressions,
  fp.clicks,
  fp.spend,
  fp.conversions,
  fp.ctr,
  fp.avg_ad_ctr,
  fp.median_ad_ctr,
  fp.stddev_ad_ctr,
  fp.cpa,
  SAFE_DIVIDE(fp.spend, fp.clicks) AS cpc,
  SAFE_DIVIDE(fp.spend * 1000, fp.impressions) AS cpm,
  ft.ctr_estimate,
  ft.ctr_low,
  ft.ctr_high,
  ft.spend_weighted_ctr,
  ft.lift,
  ft.flag,
  fp.best_crop_path IS NOT NULL AS has_crop
FROM {{ face_performance }} AS fp
LEFT JOIN {{ feature_performance }} AS ft ON ft.feature = 'face' AND ft.value = fp.face_id
WHERE fp.face_id != '__no_face__'
ORDER BY fp.ctr DESC, fp.face_id
LIMIT @limit OFFSET @offset
