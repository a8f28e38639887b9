-- Batch jobs submitted and not yet collected, oldest first.
SELECT batch_id, modality, provider, model, prompt_version, creative_ids, estimated_cost_usd, submitted_run_id,
  submitted_at
FROM {{ genai_batches }}
WHERE state = 'submitted'
ORDER BY submitted_at, batch_id
