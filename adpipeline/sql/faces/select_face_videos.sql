-- Which videos each face of one backend/model appears in.
SELECT DISTINCT face_id, creative_id
FROM {{ face_detections }}
WHERE backend = @backend AND model_id = @model_id AND face_id IS NOT NULL
ORDER BY face_id, creative_id
