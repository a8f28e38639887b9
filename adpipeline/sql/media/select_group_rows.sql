-- Whole duplicate_groups rows of some images (a thumbnail migration refreshes their inner_dhash).
-- params: ids=ARRAY<STRING>:img_a|img_b
SELECT *
FROM {{ duplicate_groups }}
WHERE creative_id IN UNNEST(@ids)
