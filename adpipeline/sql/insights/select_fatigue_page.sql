-- One page of creative_fatigue: fatigued creatives first, then by how much CTR they lost (recent against early),
-- with what the page needs to show each one: the image's content hash (thumbnail) or a face of the video (crop).
-- The page's ids are chosen on the narrow sort columns first, and only their rows read whole (the daily arrays are
-- most of the table: sorting them along would cost seconds at a million creatives).
-- params: limit=INT64:25, offset=INT64:0, only_fatigued=BOOL:false
WITH keys AS (
  SELECT unit_id, fatigued, ctr_change
  FROM {{ creative_fatigue }}
  WHERE NOT @only_fatigued OR fatigued
  ORDER BY fatigued DESC, ctr_change ASC NULLS LAST, unit_id
  LIMIT @limit OFFSET @offset
),
page AS (
  SELECT cf.*
  FROM {{ creative_fatigue }} AS cf
  WHERE cf.unit_id IN (SELECT unit_id FROM keys)
),
page_faces AS (
  SELECT d.creative_id, MIN(d.face_id) AS face_id
  FROM {{ face_detections }} AS d
  WHERE d.creative_id IN (SELECT unit_id FROM keys) AND d.face_id IS NOT NULL AND d.face_id != ''
  GROUP BY d.creative_id
)
SELECT p.*, h.sha256, c.url, f.face_id
FROM page AS p
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = p.unit_id
LEFT JOIN {{ creatives }} AS c ON c.creative_id = p.unit_id
LEFT JOIN page_faces AS f ON f.creative_id = p.unit_id
ORDER BY p.fatigued DESC, p.ctr_change ASC NULLS LAST, p.unit_id
