-- For the canonical images @ids: features another member of the same duplicate group already has from this provider,
-- model and prompt version (the group's canonical moved to a better copy after it was extracted). The stage reuses
-- them for the new canonical instead of paying for a second call about the same creative.
-- params: ids=ARRAY<STRING>:img_a|img_b|img_c, provider=STRING:offline, model=STRING:rapidocr, prompt_version=STRING:v1
SELECT g.creative_id AS for_creative_id, x.*
FROM {{ duplicate_groups }} AS g
JOIN {{ duplicate_groups }} AS m ON m.group_id = g.group_id AND m.creative_id != g.creative_id
JOIN {{ image_features }} AS x
  ON x.creative_id = m.creative_id
  AND x.provider = @provider
  AND x.model = @model
  AND x.prompt_version = @prompt_version
  AND x.status IN ('ok', 'blocked')
WHERE g.creative_id IN UNNEST(@ids)
ORDER BY g.creative_id, x.creative_id
