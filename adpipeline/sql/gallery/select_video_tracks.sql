-- Every analysed video of one model with its tracks (a video without faces has one row with NULL track_id):
-- what the gallery matches and writes one JSON record per video for.
SELECT
  s.creative_id,
  s.status AS video_status,
  c.url,
  c.first_seen_date,
  d.track_id,
  d.face_id,
  d.first_time_s,
  d.last_time_s,
  d.best_time_s,
  d.best_box,
  d.embedding
FROM {{ face_video_status }} AS s
JOIN {{ creatives }} AS c ON c.creative_id = s.creative_id
LEFT JOIN {{ face_detections }} AS d
  ON d.creative_id = s.creative_id AND d.backend = s.backend AND d.model_id = s.model_id
WHERE s.backend = @backend AND s.model_id = @model_id AND s.status IN ('ok', 'no_faces')
ORDER BY s.creative_id, d.track_id
