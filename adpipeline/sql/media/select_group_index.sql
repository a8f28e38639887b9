-- The grouping index: every grouped image's dHash, thumbnail dHash, text key and component (no thumbnails: those
-- are read for candidate pairs only).
SELECT g.creative_id, h.dhash, g.inner_dhash, g.text_key, g.component_id
FROM {{ duplicate_groups }} AS g
JOIN {{ image_hashes }} AS h ON h.creative_id = g.creative_id AND h.sha256 = g.sha256
WHERE g.component_id IS NOT NULL
