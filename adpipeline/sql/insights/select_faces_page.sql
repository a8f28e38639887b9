-- One page of the faces leaderboard: face_performance's rows (every column: insights.queries.FaceRow derives from its
-- row model) with the cost ratios and the CTR interval, lift and flag of feature_performance (feature 'face'), best
-- CTR first.
-- params: limit=INT64:25, offset=INT64:0
SELECT
  fp.*,
  SAFE_DIVIDE(fp.spend, fp.clicks) AS cpc,
  SAFE_DIVIDE(fp.spend * 1000, fp.impressions) AS cpm,
  ft.ctr_estimate,
  ft.ctr_low,
  ft.ctr_high,
  ft.spend_weighted_ctr,
  ft.lift,
  ft.flag
FROM {{ face_performance }} AS fp
LEFT JOIN {{ feature_performance }} AS ft ON ft.feature = 'face' AND ft.value = fp.face_id
WHERE fp.face_id != '__no_face__'
ORDER BY fp.ctr DESC, fp.face_id
LIMIT @limit OFFSET @offset
