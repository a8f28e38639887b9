-- The JSON records already written (content digest per video), so unchanged records are not rewritten.
SELECT creative_id, record_url, record_sha256
FROM {{ gallery_video_records }}
WHERE model_id = @model_id
