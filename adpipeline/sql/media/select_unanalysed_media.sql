-- Fetch rows whose bytes wait for a verdict, whatever their dates: status 'fetched', and rows written before that
-- status existed: 'ok' with no analysis of the same bytes, or an 'ok' video whose probe found it unusable (the
-- verdict is written back).
SELECT f.*
FROM {{ media_fetches }} AS f
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = f.creative_id AND h.sha256 = f.sha256
LEFT JOIN {{ video_metadata }} AS v ON v.creative_id = f.creative_id AND v.sha256 = f.sha256
WHERE f.status = 'fetched'
  OR (
    f.status = 'ok'
    AND (
      (f.media_type = 'image' AND h.creative_id IS NULL)
      OR (f.media_type = 'video' AND (v.creative_id IS NULL OR v.status != 'ok'))
    )
  )
ORDER BY f.creative_id
