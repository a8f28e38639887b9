-- Canonical images (one per duplicate group) that still need features from this provider,
-- model and prompt version: no row yet, or a row that failed. Rows that are done (ok), refused by the model
-- (blocked: asking again gives the same answer) or in a batch job still running (submitted) are left alone.
-- All pending work, not a date window, so a dropped or merged asset event loses nothing.
-- Duplicates inherit the canonical's features in ads_enriched.
SELECT g.creative_id, f.sha256, f.blob_path, f.size_bytes, h.width, h.height, h.image_format, h.ocr_text
FROM {{ duplicate_groups }} AS g
JOIN {{ creatives }} AS c ON c.creative_id = g.creative_id
JOIN {{ media_fetches }} AS f ON f.creative_id = g.creative_id AND f.status = 'ok'
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = g.creative_id
LEFT JOIN {{ image_features }} AS x
  ON x.creative_id = g.creative_id
  AND x.provider = @provider
  AND x.model = @model
  AND x.prompt_version = @prompt_version
  AND x.status IN ('ok', 'blocked', 'submitted')
WHERE g.is_canonical
  AND x.creative_id IS NULL
ORDER BY c.first_seen_date, g.creative_id
