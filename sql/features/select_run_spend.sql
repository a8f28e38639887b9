-- What this run has already spent on one modality (a retried task does not get a fresh budget).
-- params: run_id=STRING:run1, modality=STRING:video
SELECT COALESCE(SUM(cost_usd), 0) AS spent_usd
FROM {{ genai_usage }}
WHERE run_id = @run_id AND modality = @modality
