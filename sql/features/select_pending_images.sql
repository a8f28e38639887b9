-- Canonical images (one per duplicate group) used in the window that have no good features yet from this
-- provider, model and prompt version. Duplicates inherit the canonical's features in ads_enriched.
SELECT g.creative_id, f.sha256, f.blob_path
FROM {{ duplicate_groups }} AS g
JOIN {{ creatives }} AS c ON c.creative_id = g.creative_id
JOIN {{ media_fetches }} AS f ON f.creative_id = g.creative_id AND f.status = 'ok'
LEFT JOIN {{ image_features }} AS x
  ON x.creative_id = g.creative_id
  AND x.provider = @provider
  AND x.model = @model
  AND x.prompt_version = @prompt_version
  AND x.status = 'ok'
WHERE g.is_canonical
  AND c.last_seen_date >= @start
  AND c.first_seen_date <= @end
  AND x.creative_id IS NULL
ORDER BY c.first_seen_date, g.creative_id
