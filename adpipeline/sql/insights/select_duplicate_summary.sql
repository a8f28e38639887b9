-- Counts behind the duplicates page: groups with two members or more, the creatives in them, all hashed images.
SELECT
  COUNT(DISTINCT IF(group_size > 1, group_id, NULL)) AS n_groups,
  COUNTIF(group_size > 1) AS n_grouped,
  COUNT(*) AS n_images
FROM {{ duplicate_groups }}
