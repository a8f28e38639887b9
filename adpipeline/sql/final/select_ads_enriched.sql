-- ads_enriched: every source ad row up to the last imported date, with its creative, duplicate group, features
-- (through the group's canonical creative), video metadata and face summary. Grain: one row per (ad_id, date).
-- The final DAG replaces the date partitions @dates with these rows (one MERGE; other dates are not touched): the
-- dates whose rows differ from what this SELECT returns now (Warehouse.partitions_out_of_step over the dates of
-- sql/final/select_candidate_dates.sql); dates not imported yet stay out.
-- params: dates=ARRAY<DATE>:2024-01-01|2024-01-02|2024-01-03
WITH ads AS (
  SELECT *
  FROM {{ source_ads }}
  WHERE date <= (SELECT MAX(last_seen_date) FROM {{ creatives }})
    AND date IN UNNEST(@dates)
),
ad_creative AS (
  SELECT
    ads.*,
    CASE WHEN ads.video_url IS NOT NULL THEN 'video' WHEN ads.image_url IS NOT NULL THEN 'image' END AS media_type,
    COALESCE(ads.video_url, ads.image_url) AS url
  FROM ads
),
face_summary AS (
  SELECT
    creative_id,
    ARRAY_AGG(DISTINCT face_id IGNORE NULLS ORDER BY face_id) AS face_ids,
    COUNT(DISTINCT face_id) AS n_faces
  FROM {{ face_detections }}
  GROUP BY creative_id
),
customer_summary AS (
  SELECT
    creative_id,
    ARRAY_AGG(DISTINCT customer_id ORDER BY customer_id) AS customer_ids,
    COUNT(DISTINCT customer_id) AS n_customers
  FROM {{ customer_appearances }}
  GROUP BY creative_id
)
SELECT
  a.ad_id,
  a.date,
  a.campaign,
  a.media_type,
  c.creative_id,
  a.url,
  f.status AS fetch_status,
  g.group_id AS duplicate_group_id,
  COALESCE(g.canonical_creative_id, c.creative_id) AS canonical_creative_id,
  a.impressions,
  a.clicks,
  a.spend,
  a.conversions,
  SAFE_DIVIDE(a.clicks, a.impressions) AS ctr,
  COALESCE(h.width, vm.width) AS width,
  COALESCE(h.height, vm.height) AS height,
  h.aspect_label,
  vm.duration_s,
  vm.has_audio,
  COALESCE(fi.provider, fv.provider) AS feature_provider,
  COALESCE(fi.model, fv.model) AS feature_model,
  COALESCE(fi.status, fv.status) AS feature_status,
  COALESCE(fi.product_type, fv.product_type) AS product_type,
  COALESCE(fi.product_category, fv.product_category) AS product_category,
  COALESCE(fi.brands, fv.brands, []) AS brands,
  COALESCE(fi.visual_style, fv.visual_style) AS visual_style,
  COALESCE(fi.people_count, fv.people_count) AS people_count,
  COALESCE(fi.setting, fv.setting) AS setting,
  COALESCE(fi.language, fv.language) AS language,
  COALESCE(fi.has_text, fv.has_text) AS has_text,
  COALESCE(fi.text, fv.text) AS ocr_text,
  COALESCE(fi.promotions, fv.promotions, []) AS promotions,
  COALESCE(fi.discount_percent, fv.discount_percent) AS discount_percent,
  COALESCE(fi.call_to_action, fv.call_to_action) AS call_to_action,
  COALESCE(fi.cta_kind, fv.cta_kind) AS cta_kind,
  COALESCE(fi.dominant_colors, fv.dominant_colors, []) AS dominant_colors,
  COALESCE(fs.face_ids, []) AS face_ids,
  COALESCE(fs.n_faces, 0) AS n_faces,
  COALESCE(cs.customer_ids, []) AS customer_ids,
  COALESCE(cs.n_customers, 0) AS n_customers
FROM ad_creative AS a
LEFT JOIN {{ creatives }} AS c ON c.url = a.url AND c.media_type = a.media_type
LEFT JOIN {{ media_fetches }} AS f ON f.creative_id = c.creative_id
LEFT JOIN {{ duplicate_groups }} AS g ON g.creative_id = c.creative_id
LEFT JOIN {{ image_hashes }} AS h ON h.creative_id = c.creative_id
LEFT JOIN {{ video_metadata }} AS vm ON vm.creative_id = c.creative_id
LEFT JOIN {{ image_features }} AS fi ON fi.creative_id = COALESCE(g.canonical_creative_id, c.creative_id)
LEFT JOIN {{ video_features }} AS fv ON fv.creative_id = c.creative_id
LEFT JOIN face_summary AS fs ON fs.creative_id = c.creative_id
LEFT JOIN customer_summary AS cs ON cs.creative_id = c.creative_id
