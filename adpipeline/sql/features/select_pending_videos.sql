-- Videos fetched and probed fine, that still need features from this provider, model and
-- prompt version, whatever day they came from (no row, or a failed one; ok, blocked and submitted rows are left alone).
SELECT v.creative_id, f.sha256, f.blob_path, f.size_bytes, v.has_audio, v.duration_s, v.width, v.height
FROM {{ video_metadata }} AS v
JOIN {{ creatives }} AS c ON c.creative_id = v.creative_id
JOIN {{ media_fetches }} AS f ON f.creative_id = v.creative_id AND f.status = 'ok'
LEFT JOIN {{ video_features }} AS x
  ON x.creative_id = v.creative_id
  AND x.provider = @provider
  AND x.model = @model
  AND x.prompt_version = @prompt_version
  AND x.status IN ('ok', 'blocked', 'submitted')
WHERE v.status = 'ok'
  AND x.creative_id IS NULL
ORDER BY c.first_seen_date, v.creative_id
