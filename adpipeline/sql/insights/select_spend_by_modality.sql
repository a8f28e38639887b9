-- Tokens and spend per modality of the creative (image or video) and mode (online, batch, offline).
-- params: start_date=DATE:2024-01-01, end_date=DATE:2024-01-31
SELECT
  COALESCE(modality, 'unknown') AS modality,
  mode,
  COUNT(*) AS calls,
  SUM(cost_usd) AS cost_usd,
  SUM(input_text_tokens) AS text_tokens,
  SUM(input_image_tokens) AS image_tokens,
  SUM(input_video_tokens) AS video_tokens,
  SUM(input_audio_tokens) AS audio_tokens,
  SUM(cached_tokens) AS cached_tokens,
  SUM(output_tokens + thinking_tokens) AS output_tokens
FROM {{ genai_usage }}
WHERE DATE(called_at) BETWEEN @start_date AND @end_date
GROUP BY modality, mode
ORDER BY cost_usd DESC, modality, mode
