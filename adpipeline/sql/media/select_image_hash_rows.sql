-- Whole image_hashes rows of some images (to store their text record).
-- params: ids=ARRAY<STRING>:img_a|img_b
SELECT *
FROM {{ image_hashes }}
WHERE creative_id IN UNNEST(@ids)
