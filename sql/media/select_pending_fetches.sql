-- Creatives used in the window [@start, @end] that have no good fetch yet (or all of them when @refresh).
SELECT c.creative_id, c.url, c.media_type, c.first_seen_date
FROM {{ creatives }} AS c
LEFT JOIN {{ media_fetches }} AS f ON f.creative_id = c.creative_id
WHERE c.last_seen_date >= @start
  AND c.first_seen_date <= @end
  AND (f.creative_id IS NULL OR f.status != 'ok' OR @refresh)
ORDER BY c.first_seen_date, c.creative_id
