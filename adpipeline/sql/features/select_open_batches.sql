-- Batch jobs submitted and not yet collected, oldest first.
SELECT *
FROM {{ genai_batches }}
WHERE state = 'submitted'
ORDER BY submitted_at, batch_id
