-- Each creative's feature values in long form, as feature_performance names them (the same CASE; keep the two in
-- step): one row per (unit_id, feature, value). Read by the adjusted feature-effects model.
-- params: unit_cut=STRING:
WITH per_creative AS (
  SELECT
    COALESCE(canonical_creative_id, creative_id) AS unit_id,
    ANY_VALUE(media_type) AS media_type,
    ANY_VALUE(cta_kind) AS cta_kind,
    ANY_VALUE(has_text) AS has_text,
    ANY_VALUE(people_count) AS people_count,
    ANY_VALUE(visual_style) AS visual_style,
    ANY_VALUE(setting) AS setting,
    ANY_VALUE(product_category) AS product_category,
    ANY_VALUE(language) AS language,
    ANY_VALUE(aspect_label) AS aspect_label,
    ANY_VALUE(promotions) AS promotions,
    ANY_VALUE(dominant_colors) AS dominant_colors,
    ANY_VALUE(brands) AS brands,
    ANY_VALUE(face_ids) AS face_ids,
    ANY_VALUE(customer_ids) AS customer_ids
  FROM {{ ads_enriched }}
  WHERE creative_id IS NOT NULL AND impressions > 0
    AND (@unit_cut = '' OR SUBSTR(COALESCE(canonical_creative_id, creative_id), 1, 4) < @unit_cut)
  GROUP BY unit_id
),
scalar_values AS (
  SELECT unit_id, 'media_type' AS feature, media_type AS value FROM per_creative
  UNION ALL SELECT unit_id, 'cta_kind', cta_kind FROM per_creative
  UNION ALL SELECT unit_id, 'has_text', CASE WHEN has_text THEN 'yes' WHEN NOT has_text THEN 'no' END FROM per_creative
  UNION ALL SELECT unit_id, 'people',
    CASE WHEN people_count = 0 THEN 'none' WHEN people_count = 1 THEN 'one' WHEN people_count > 1 THEN 'several' END
  FROM per_creative
  UNION ALL SELECT unit_id, 'visual_style', visual_style FROM per_creative
  UNION ALL SELECT unit_id, 'setting', setting FROM per_creative
  UNION ALL SELECT unit_id, 'product_category', product_category FROM per_creative
  UNION ALL SELECT unit_id, 'language', language FROM per_creative
  UNION ALL SELECT unit_id, 'aspect', aspect_label FROM per_creative
),
array_values AS (
  SELECT pc.unit_id, 'promotion' AS feature, v AS value FROM per_creative AS pc CROSS JOIN UNNEST(pc.promotions) AS v
  UNION ALL
  SELECT pc.unit_id, 'color', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.dominant_colors) AS v
  UNION ALL
  SELECT pc.unit_id, 'brand', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.brands) AS v
  UNION ALL
  SELECT pc.unit_id, 'face', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.face_ids) AS v
  UNION ALL
  SELECT pc.unit_id, 'customer', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.customer_ids) AS v
)
SELECT unit_id, feature, value FROM scalar_values WHERE value IS NOT NULL
UNION DISTINCT
SELECT unit_id, feature, value FROM array_values WHERE value IS NOT NULL AND value != ''
