-- One page of creative_fatigue: fatigued creatives first, then by how much CTR they lost (recent against early),
-- with what the page needs to show each one: the image's content hash (thumbnail) or a face of the video (crop).
-- (One sort with the rows whole: on DuckDB at a million creatives the first page takes 0.1-0.6 s; pages far down
-- carry the daily arrays through the sort, 2-3 s at offset 50,000. Choosing the ids on the narrow columns first and
-- reading those rows back measured about 1 s at any offset: slower for the first pages, which are the ones read.)
-- params: limit=INT64:25, offset=INT64:0, only_fatigued=BOOL:false
WITH page AS (
  SELECT *
  FROM {{ creative_fatigue }}
  WHERE NOT @only_fatigued OR fatigued
  ORDER BY fatigued DESC, ctr_change ASC NULLS LAST, unit_id
  LIMIT @limit OFFSET @offset
),
page_faces AS (
  SELECT d.creative_id, MIN(d.face_id) AS face_id
  FROM {{ face_detections }} AS d
  JOIN page AS p ON p.unit_id = d.creative_id
  WHERE d.face_id IS NOT NULL AND d.face_id != ''
  GROUP BY d.creative_id
)
SELECT p.*, h.sha256, c.url, f.face_id
FROM page AS p
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = p.unit_id
LEFT JOIN {{ creatives }} AS c ON c.creative_id = p.unit_id
LEFT JOIN page_faces AS f ON f.creative_id = p.unit_id
ORDER BY p.fatigued DESC, p.ctr_change ASC NULLS LAST, p.unit_id
