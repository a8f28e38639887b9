-- Which gallery customers the faces of one page are (customer_appearances: open-set matches), most confident first.
-- params: face_ids=ARRAY<STRING>:f1|f2
SELECT
  face_id,
  customer_id,
  MAX(confidence_pct) AS confidence_pct,
  COUNT(DISTINCT creative_id) AS n_videos
FROM {{ customer_appearances }}
WHERE face_id IN UNNEST(@face_ids)
GROUP BY face_id, customer_id
ORDER BY face_id, confidence_pct DESC, customer_id
