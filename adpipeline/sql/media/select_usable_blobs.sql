-- Which of the blobs @shas are still used by a usable fetch row (fetched, or analysed ok) of a creative outside
-- @ids: those are kept when the items @ids are judged unusable.
-- params: ids=ARRAY<STRING>:img_a, shas=ARRAY<STRING>:sha_img_a|sha_img_b
SELECT DISTINCT sha256
FROM {{ media_fetches }}
WHERE sha256 IN UNNEST(@shas)
  AND status IN ('ok', 'fetched')
  AND creative_id NOT IN UNNEST(@ids)
