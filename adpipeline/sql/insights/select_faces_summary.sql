-- How many faces the leaderboard pages through, and the no-face baseline (ads whose video showed nobody).
SELECT
  COUNTIF(face_id != '__no_face__') AS n_faces,
  MAX(IF(face_id = '__no_face__', ctr, NULL)) AS baseline_ctr,
  MAX(IF(face_id = '__no_face__', n_ads, NULL)) AS baseline_ads,
  MAX(IF(face_id = '__no_face__', impressions, NULL)) AS baseline_impressions,
  MAX(IF(face_id = '__no_face__', stddev_ad_ctr, NULL)) AS baseline_stddev_ad_ctr
FROM {{ face_performance }}
