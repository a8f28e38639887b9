-- Videos fetched and probed fine that this backend/model has not analysed for faces yet: all pending work, not a
-- date window, so a dropped or merged asset event loses nothing. Unusable videos (fetch or probe status other
-- than ok) are skipped. Ordered as the clustering orders them.
SELECT v.creative_id, f.sha256, f.blob_path, c.first_seen_date
FROM {{ video_metadata }} AS v
JOIN {{ creatives }} AS c ON c.creative_id = v.creative_id
JOIN {{ media_fetches }} AS f ON f.creative_id = v.creative_id AND f.status = 'ok'
LEFT JOIN {{ face_video_status }} AS s
  ON s.creative_id = v.creative_id AND s.backend = @backend AND s.model_id = @model_id
WHERE v.status = 'ok'
  AND s.creative_id IS NULL
ORDER BY c.first_seen_date, v.creative_id
