-- Model spend per day, provider and model, with calls and tokens by modality.
-- params: start_date=DATE:2024-01-01, end_date=DATE:2024-01-31, limit=INT64:500
SELECT
  DATE(called_at) AS day,
  provider,
  model,
  COUNT(*) AS calls,
  COUNTIF(status != 'ok') AS failed_calls,
  SUM(cost_usd) AS cost_usd,
  SUM(input_text_tokens) AS text_tokens,
  SUM(input_image_tokens) AS image_tokens,
  SUM(input_video_tokens) AS video_tokens,
  SUM(input_audio_tokens) AS audio_tokens,
  SUM(output_tokens + thinking_tokens) AS output_tokens
FROM {{ genai_usage }}
WHERE DATE(called_at) BETWEEN @start_date AND @end_date
GROUP BY day, provider, model
ORDER BY day DESC, cost_usd DESC, provider, model
LIMIT @limit
