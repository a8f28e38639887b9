-- Budget use: what each features run spent per modality (the cap applies per run), latest runs first.
-- params: start_date=DATE:2024-01-01, end_date=DATE:2024-01-31, limit=INT64:20
SELECT
  run_id,
  COALESCE(modality, 'unknown') AS modality,
  MIN(called_at) AS first_call,
  COUNT(*) AS calls,
  SUM(cost_usd) AS cost_usd
FROM {{ genai_usage }}
WHERE DATE(called_at) BETWEEN @start_date AND @end_date
GROUP BY run_id, modality
ORDER BY first_call DESC, run_id, modality
LIMIT @limit
