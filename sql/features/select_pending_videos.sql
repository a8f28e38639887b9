-- Videos used in the window, fetched and probed fine, with no good features yet from this provider/model/prompt.
SELECT v.creative_id, f.sha256, f.blob_path, v.has_audio
FROM {{ video_metadata }} AS v
JOIN {{ creatives }} AS c ON c.creative_id = v.creative_id
JOIN {{ media_fetches }} AS f ON f.creative_id = v.creative_id AND f.status = 'ok'
LEFT JOIN {{ video_features }} AS x
  ON x.creative_id = v.creative_id
  AND x.provider = @provider
  AND x.model = @model
  AND x.prompt_version = @prompt_version
  AND x.status = 'ok'
WHERE v.status = 'ok'
  AND c.last_seen_date >= @start
  AND c.first_seen_date <= @end
  AND x.creative_id IS NULL
ORDER BY c.first_seen_date, v.creative_id
