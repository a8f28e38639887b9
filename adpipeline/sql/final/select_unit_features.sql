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
scalar_features AS (
  SELECT name FROM UNNEST(
    ['media_type', 'cta_kind', 'has_text', 'people', 'visual_style', 'setting', 'product_category', 'language',
     'aspect']
  ) AS name
),
scalar_values AS (
  SELECT
    u.unit_id,
    f.name AS feature,
    CASE f.name
      WHEN 'media_type' THEN u.media_type
      WHEN 'cta_kind' THEN u.cta_kind
      WHEN 'has_text' THEN CASE WHEN u.has_text THEN 'yes' WHEN NOT u.has_text THEN 'no' END
      WHEN 'people' THEN
        CASE WHEN u.people_count = 0 THEN 'none' WHEN u.people_count = 1 THEN 'one' WHEN u.people_count > 1 THEN 'several' END
      WHEN 'visual_style' THEN u.visual_style
      WHEN 'setting' THEN u.setting
      WHEN 'product_category' THEN u.product_category
      WHEN 'language' THEN u.language
      WHEN 'aspect' THEN u.aspect_label
    END AS value
  FROM per_creative AS u CROSS JOIN scalar_features AS f
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
SELECT fk.unit_id, fk.feature, fk.value
FROM (
  SELECT unit_id, feature, value FROM scalar_values WHERE value IS NOT NULL
  UNION ALL
  SELECT DISTINCT unit_id, feature, value FROM array_values WHERE value IS NOT NULL AND value != ''
) AS fk
