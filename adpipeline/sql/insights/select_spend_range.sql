-- The days model calls were made on (the spend page's default range).
SELECT MIN(DATE(called_at)) AS first_day, MAX(DATE(called_at)) AS last_day FROM {{ genai_usage }}
