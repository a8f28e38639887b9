-- feature_performance: for each feature value (each face, each gallery customer), the creatives that show it, their
-- ads and metrics, the CTR with a 95 % interval, the lift against all other creatives of the same dates, and a flag
-- only where the interval excludes that baseline. Grain: one row per (feature, value). Rebuilt by the final DAG over
-- all dates; the insights page runs it for a date range.
-- params: start_date=DATE:2024-01-01, end_date=DATE:2024-01-31, min_impressions=INT64:100, feature=STRING:
-- (feature: '' for every feature, else only that one: the page asks for one)
--
-- Pooled per creative (beta-binomial): the unit is the canonical creative of a duplicate group, and creatives' CTRs
-- vary around a feature's mean with an overdispersion rho (the intra-class correlation of clicks, one ANOVA
-- moment estimate over all creatives of the dates). A creative with n impressions then carries the information of
-- w = n / (1 + (n - 1) rho) independent impressions, at most 1 / rho however big it is. ctr_estimate is the w-weighted
-- mean of the creatives' CTRs, its interval Wilson's on sum(w) impressions, and the baseline the same estimate over all
-- other creatives; so one big creative cannot decide a value. ctr is plain clicks / impressions, for reference.
WITH ads AS (
  SELECT *
  FROM {{ ads_enriched }}
  WHERE creative_id IS NOT NULL AND date BETWEEN @start_date AND @end_date
),
per_creative AS (
  SELECT
    COALESCE(canonical_creative_id, creative_id) AS unit_id,
    COUNT(DISTINCT ad_id) AS n_ads,
    CAST(SUM(impressions) AS FLOAT64) AS n,
    CAST(SUM(clicks) AS FLOAT64) AS k,
    SUM(spend) AS spend,
    SUM(conversions) AS conversions,
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
  FROM ads
  GROUP BY unit_id
),
stats AS (
  SELECT * FROM per_creative WHERE n > 0
),
moments AS (
  SELECT
    COUNT(*) AS m,
    SUM(n) AS n_all,
    SAFE_DIVIDE(SUM(k), SUM(n)) AS mu,
    SUM(n * n) AS nn
  FROM stats
),
anova AS (
  SELECT
    SAFE_DIVIDE(SUM(s.n * POW(s.k / s.n - mo.mu, 2)), ANY_VALUE(mo.m) - 1) AS msb,
    SAFE_DIVIDE(SUM(s.k * (1 - s.k / s.n)), ANY_VALUE(mo.n_all) - ANY_VALUE(mo.m)) AS msw,
    SAFE_DIVIDE(ANY_VALUE(mo.n_all) - ANY_VALUE(mo.nn) / ANY_VALUE(mo.n_all), ANY_VALUE(mo.m) - 1) AS n0
  FROM stats AS s CROSS JOIN moments AS mo
),
overdispersion AS (
  SELECT COALESCE(GREATEST(0, LEAST(0.999, SAFE_DIVIDE(msb - msw, msb + (n0 - 1) * msw))), 0) AS rho
  FROM anova
),
units AS (
  SELECT
    pc.*,
    IF(pc.n > 0, pc.n / (1 + (pc.n - 1) * o.rho), 0) AS w,
    IF(pc.n > 0, pc.k / pc.n, 0) AS p,
    o.rho
  FROM per_creative AS pc CROSS JOIN overdispersion AS o
),
-- One row per creative and scalar feature, per_creative read once (a UNION of one SELECT per feature recomputed it
-- per branch on DuckDB: 9x the work), and the creatives' figures joined on once after the UNION.
scalar_features AS (
  SELECT name FROM UNNEST(
    ['media_type', 'cta_kind', 'has_text', 'people', 'visual_style', 'setting', 'product_category', 'language',
     'aspect']
  ) AS name
  WHERE @feature = '' OR name = @feature
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
-- The list features of a creative are its canonical's (features) or its own (faces; videos are never grouped).
array_values AS (
  SELECT pc.unit_id, 'promotion' AS feature, v AS value FROM per_creative AS pc CROSS JOIN UNNEST(pc.promotions) AS v
  WHERE @feature IN ('', 'promotion')
  UNION ALL
  SELECT pc.unit_id, 'color', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.dominant_colors) AS v
  WHERE @feature IN ('', 'color')
  UNION ALL
  SELECT pc.unit_id, 'brand', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.brands) AS v
  WHERE @feature IN ('', 'brand')
  UNION ALL
  SELECT pc.unit_id, 'face', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.face_ids) AS v
  WHERE @feature IN ('', 'face')
  UNION ALL
  SELECT pc.unit_id, 'customer', v FROM per_creative AS pc CROSS JOIN UNNEST(pc.customer_ids) AS v
  WHERE @feature IN ('', 'customer')
),
feature_values AS (
  SELECT fk.feature, fk.value, u.n_ads, u.n, u.k, u.spend, u.conversions, u.w, u.p, u.rho
  FROM (
    SELECT unit_id, feature, value FROM scalar_values WHERE value IS NOT NULL
    UNION ALL
    SELECT DISTINCT unit_id, feature, value FROM array_values WHERE value IS NOT NULL AND value != ''
  ) AS fk
  JOIN units AS u ON u.unit_id = fk.unit_id
),
totals AS (
  SELECT SUM(w) AS w_all, SUM(w * p) AS wp_all FROM units
),
agg AS (
  SELECT
    feature,
    value,
    COUNT(*) AS m,
    SUM(n_ads) AS n_ads,
    SUM(n) AS n,
    SUM(k) AS k,
    SUM(spend) AS spend,
    SUM(conversions) AS conversions,
    SAFE_DIVIDE(SUM(IF(n > 0, spend * k / n, 0)), SUM(IF(n > 0, spend, 0))) AS spend_weighted_ctr,
    SUM(w) AS w,
    SUM(w * p) AS wp,
    ANY_VALUE(rho) AS rho
  FROM feature_values
  GROUP BY feature, value
),
estimates AS (
  SELECT
    agg.*,
    SAFE_DIVIDE(k, n) AS ctr,
    SAFE_DIVIDE(wp, w) AS est,
    -- No baseline when no other creative is left: every creative with impressions carries w >= 1 (rho <= 0.999), so
    -- a remainder under 0.5 is the two sums' rounding (it gave -0.0 on one engine and NULL on the other).
    IF(t.w_all - w >= 0.5, SAFE_DIVIDE(t.wp_all - wp, t.w_all - w), NULL) AS baseline_ctr
  FROM agg CROSS JOIN totals AS t
),
interval_95 AS (
  SELECT
    estimates.*,
    CASE WHEN w > 0 THEN
      (est + 3.841459 / (2 * w)) / (1 + 3.841459 / w)
      - 1.959964 * SQRT(est * (1 - est) / w + 3.841459 / (4 * w * w)) / (1 + 3.841459 / w)
    END AS ctr_low,
    CASE WHEN w > 0 THEN
      (est + 3.841459 / (2 * w)) / (1 + 3.841459 / w)
      + 1.959964 * SQRT(est * (1 - est) / w + 3.841459 / (4 * w * w)) / (1 + 3.841459 / w)
    END AS ctr_high
  FROM estimates
)
SELECT
  feature,
  value,
  m AS n_creatives,
  n_ads,
  CAST(n AS INT64) AS impressions,
  CAST(k AS INT64) AS clicks,
  spend,
  conversions,
  ctr,
  est AS ctr_estimate,
  GREATEST(ctr_low, 0) AS ctr_low,
  LEAST(ctr_high, 1) AS ctr_high,
  w AS effective_impressions,
  rho AS overdispersion,
  spend_weighted_ctr,
  SAFE_DIVIDE(spend, k) AS cpc,
  baseline_ctr,
  SAFE_DIVIDE(est, baseline_ctr) - 1 AS lift,
  CASE
    WHEN n < @min_impressions OR m < 2 OR baseline_ctr IS NULL THEN NULL
    WHEN ctr_low > baseline_ctr THEN 'above'
    WHEN ctr_high < baseline_ctr THEN 'below'
  END AS flag
FROM interval_95
