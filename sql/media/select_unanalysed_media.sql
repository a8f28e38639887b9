-- Good fetches in the window whose bytes have not been analysed yet (no image_hashes / video_metadata row for
-- the same sha256).
SELECT f.creative_id, f.media_type, f.sha256, f.blob_path
FROM {{ media_fetches }} AS f
JOIN {{ creatives }} AS c ON c.creative_id = f.creative_id
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = f.creative_id AND h.sha256 = f.sha256
LEFT JOIN {{ video_metadata }} AS v ON v.creative_id = f.creative_id AND v.sha256 = f.sha256
WHERE f.status = 'ok'
  AND c.last_seen_date >= @start
  AND c.first_seen_date <= @end
  AND ((f.media_type = 'image' AND h.creative_id IS NULL) OR (f.media_type = 'video' AND v.creative_id IS NULL))
ORDER BY c.first_seen_date, f.creative_id
