-- Tracks of this backend/model that no unique face holds yet (written by the mapped detection tasks, placed by
-- the clustering step), with the global order key the clustering sorts them by.
SELECT d.track_id, d.creative_id, d.embedding, d.quality, d.n_frames, c.first_seen_date
FROM {{ face_detections }} AS d
JOIN {{ creatives }} AS c ON c.creative_id = d.creative_id
WHERE d.backend = @backend AND d.model_id = @model_id AND d.face_id IS NULL
ORDER BY c.first_seen_date, d.creative_id, d.track_id
