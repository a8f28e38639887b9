-- How many image_hashes rows still hold a thumbnail of an older stored format (thumb_format NULL or below @format):
-- the media group task migrates them first (stages/media_thumbs.py). Reads one column.
-- params: format=INT64:3
SELECT COUNT(*) AS n
FROM {{ image_hashes }}
WHERE thumb_format IS NULL OR thumb_format < @format
