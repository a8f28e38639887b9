-- The unique faces of one backend/model (the incremental clustering's state). A face whose vector retention removed
-- (empty centroid) keeps its id for the performance tables but is never compared again.
SELECT *
FROM {{ faces }}
WHERE backend = @backend AND model_id = @model_id AND ARRAY_LENGTH(centroid) > 0
ORDER BY face_id
