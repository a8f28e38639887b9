-- One page of near-duplicate groups (two members or more), largest first, with every member of those groups: its
-- content hash (for the thumbnail), distance to the canonical member and URL.
-- params: limit=INT64:25, offset=INT64:0
WITH page AS (
  SELECT group_id, ANY_VALUE(group_size) AS group_size
  FROM {{ duplicate_groups }}
  WHERE group_size > 1
  GROUP BY group_id
  ORDER BY group_size DESC, group_id
  LIMIT @limit OFFSET @offset
)
SELECT
  g.group_id,
  p.group_size,
  g.creative_id,
  g.is_canonical,
  g.hamming_to_canonical,
  c.url,
  h.sha256,
  h.width,
  h.height
FROM page AS p
JOIN {{ duplicate_groups }} AS g ON g.group_id = p.group_id
LEFT JOIN {{ creatives }} AS c ON c.creative_id = g.creative_id
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = g.creative_id
ORDER BY p.group_size DESC, g.group_id, g.is_canonical DESC, g.hamming_to_canonical, g.creative_id
