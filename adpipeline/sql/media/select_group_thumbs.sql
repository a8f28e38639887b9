-- Stored thumbnails and text of the candidates of one grouping pass.
-- params: ids=ARRAY<STRING>:img_a|img_c
SELECT creative_id, fine_thumb, ocr_text
FROM {{ image_hashes }}
WHERE creative_id IN UNNEST(@ids)
