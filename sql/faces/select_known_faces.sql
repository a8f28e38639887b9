-- The unique faces of one backend/model (the incremental clustering's state).
SELECT *
FROM {{ faces }}
WHERE backend = @backend AND model_id = @model_id
ORDER BY face_id
