-- Stored thumbnails of the candidates of one grouping pass.
SELECT creative_id, fine_thumb
FROM {{ image_hashes }}
WHERE creative_id IN UNNEST(@ids)
