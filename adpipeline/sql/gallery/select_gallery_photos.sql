-- Enrolment state of the customer base for one model: what each photo's bytes were when last enrolled.
SELECT customer_id, photo_key, photo_url, sha256, status, reason, embedding
FROM {{ gallery_photos }}
WHERE model_id = @model_id
ORDER BY customer_id, photo_key
