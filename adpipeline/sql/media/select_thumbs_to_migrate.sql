-- image_hashes rows whose thumbnail is not recorded in the current stored format (thumb_format NULL or below @format),
-- a page at a time after @after in creative-id order: `adpipeline migrate-thumbs` (stages/media_thumbs.py).
-- params: format=INT64:3, after=STRING:, limit=INT64:100
SELECT *
FROM {{ image_hashes }}
WHERE (thumb_format IS NULL OR thumb_format < @format) AND creative_id > @after
ORDER BY creative_id
LIMIT @limit
