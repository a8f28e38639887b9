-- Every member of the components a grouping pass touches: its facts and its current duplicate_groups row.
-- params: components=ARRAY<STRING>:c1|c2
SELECT g.*, h.dhash, h.width, h.height
FROM {{ duplicate_groups }} AS g
JOIN {{ image_hashes }} AS h ON h.creative_id = g.creative_id
WHERE g.component_id IN UNNEST(@components)
