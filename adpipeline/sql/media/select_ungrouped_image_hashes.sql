-- Images still to group: no duplicate_groups row yet, a row written before the grouping state existed, or a row for
-- other bytes (the image was analysed again). Pending work, not a date window; @limit per pass.
-- params: limit=INT64:100
SELECT h.creative_id, h.sha256, h.dhash, h.width, h.height, h.fine_thumb, h.ocr_text
FROM {{ image_hashes }} AS h
LEFT JOIN {{ duplicate_groups }} AS g ON g.creative_id = h.creative_id
WHERE g.creative_id IS NULL OR g.component_id IS NULL OR g.sha256 IS NULL OR g.sha256 != h.sha256
ORDER BY h.creative_id
LIMIT @limit
