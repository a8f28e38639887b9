-- Creatives to fetch, whatever their dates: those with no fetch row yet, and those whose last fetch or analysis
-- failed once its back-off (next_attempt_at) has passed; with @refresh, every creative of the window [@start, @end]
-- again. Usable rows ('fetched': waiting for analysis; 'ok') are never fetched again otherwise.
-- params: now=TIMESTAMP:2024-01-06T00:00:00
SELECT
  c.creative_id,
  c.url,
  c.media_type,
  c.first_seen_date,
  f.status AS previous_status,
  COALESCE(f.failed_runs, 0) AS failed_runs
FROM {{ creatives }} AS c
LEFT JOIN {{ media_fetches }} AS f ON f.creative_id = c.creative_id
WHERE f.creative_id IS NULL
  OR (f.status NOT IN ('ok', 'fetched') AND (f.next_attempt_at IS NULL OR f.next_attempt_at <= @now))
  OR (@refresh AND c.last_seen_date >= @start AND c.first_seen_date <= @end)
ORDER BY c.first_seen_date, c.creative_id
