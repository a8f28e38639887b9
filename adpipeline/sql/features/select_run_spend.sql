-- What this DAG run has already spent: in all (run_usd) and on one task's items (task_usd: the modality, and the
-- chunk's creative ids when given). A retried task gets no fresh budget, and no task takes what others spent.
-- params: run_id=STRING:run1, modality=STRING:video, creative_ids=ARRAY<STRING>:vid_0|vid_1
SELECT
  COALESCE(SUM(cost_usd), 0) AS run_usd,
  COALESCE(SUM(IF(
    modality = @modality AND (ARRAY_LENGTH(@creative_ids) = 0 OR creative_id IN UNNEST(@creative_ids)),
    cost_usd,
    0
  )), 0) AS task_usd
FROM {{ genai_usage }}
WHERE run_id = @run_id
