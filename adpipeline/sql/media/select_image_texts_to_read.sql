-- The bytes of images whose text a grouping pass needs and has not stored: their usable blob, and any text already
-- stored for the same bytes under another creative (read once per image content, never twice).
-- params: ids=ARRAY<STRING>:img_a|img_b
SELECT h.creative_id, h.sha256, f.blob_path, t.stored_text
FROM {{ image_hashes }} AS h
JOIN {{ media_fetches }} AS f ON f.creative_id = h.creative_id AND f.status = 'ok'
LEFT JOIN (
  SELECT sha256, MIN(ocr_text) AS stored_text
  FROM {{ image_hashes }}
  WHERE ocr_text IS NOT NULL
    AND sha256 IN (SELECT sha256 FROM {{ image_hashes }} WHERE creative_id IN UNNEST(@ids))
  GROUP BY sha256
) AS t ON t.sha256 = h.sha256
WHERE h.creative_id IN UNNEST(@ids)
