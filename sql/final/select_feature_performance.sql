-- feature_performance: for each feature value (and each face), the creatives that show it, their ads and metrics, the
-- CTR with a 95 % interval, the lift against all other creatives of the same dates, and a flag only where the
-- interval excludes that baseline. Grain: one row per (feature, value). Rebuilt by the final DAG over all dates; the
-- insights page runs it for a date range. params: start_date=DATE:2026-10-01, end_date=DATE:2026-10-14,
-- min_impressions=INT64:1000
--
-- Pooled per creative: the unit is the canonical creative of a duplicate group. The interval is Wilson's on an
-- effective sample size, impressions / design effect, where the design effect compares the spread of the creatives'
-- clicks around the pooled CTR (cluster-robust variance of the ratio K/N) with the binomial variance; it is at least 1,
-- so one large creative, or creatives that disagree, widen the interval instead of looking certain.
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
    ANY_VALUE(aspect_label) AS aspect_label
  FROM ads
  GROUP BY unit_id
),
array_values AS (
  SELECT DISTINCT COALESCE(a.canonical_creative_id, a.creative_id) AS unit_id, 'promotion' AS feature, v AS value
  FROM ads AS a CROSS JOIN UNNEST(a.promotions) AS v
  UNION ALL
  SELECT DISTINCT COALESCE(a.canonical_creative_id, a.creative_id), 'color', v
  FROM ads AS a CROSS JOIN UNNEST(a.dominant_colors) AS v
  UNION ALL
  SELECT DISTINCT COALESCE(a.canonical_creative_id, a.creative_id), 'brand', v
  FROM ads AS a CROSS JOIN UNNEST(a.brands) AS v
  UNION ALL
  SELECT DISTINCT COALESCE(a.canonical_creative_id, a.creative_id), 'face', v
  FROM ads AS a CROSS JOIN UNNEST(a.face_ids) AS v
),
feature_values AS (
  SELECT unit_id, 'media_type' AS feature, media_type AS value FROM per_creative WHERE media_type IS NOT NULL
  UNION ALL
  SELECT unit_id, 'cta_kind', cta_kind FROM per_creative WHERE cta_kind IS NOT NULL
  UNION ALL
  SELECT unit_id, 'has_text', CASE WHEN has_text THEN 'yes' ELSE 'no' END FROM per_creative WHERE has_text IS NOT NULL
  UNION ALL
  SELECT unit_id, 'people', CASE WHEN people_count = 0 THEN 'none' WHEN people_count = 1 THEN 'one' ELSE 'several' END
  FROM per_creative WHERE people_count IS NOT NULL
  UNION ALL
  SELECT unit_id, 'visual_style', visual_style FROM per_creative WHERE visual_style IS NOT NULL
  UNION ALL
  SELECT unit_id, 'setting', setting FROM per_creative WHERE setting IS NOT NULL
  UNION ALL
  SELECT unit_id, 'product_category', product_category FROM per_creative WHERE product_category IS NOT NULL
  UNION ALL
  SELECT unit_id, 'language', language FROM per_creative WHERE language IS NOT NULL
  UNION ALL
  SELECT unit_id, 'aspect', aspect_label FROM per_creative WHERE aspect_label IS NOT NULL
  UNION ALL
  SELECT unit_id, feature, value FROM array_values WHERE value IS NOT NULL AND value != ''
),
totals AS (
  SELECT SUM(n) AS n_all, SUM(k) AS k_all FROM per_creative
),
agg AS (
  SELECT
    fv.feature,
    fv.value,
    COUNT(*) AS m,
    SUM(p.n_ads) AS n_ads,
    SUM(p.n) AS n,
    SUM(p.k) AS k,
    SUM(p.spend) AS spend,
    SUM(p.conversions) AS conversions,
    SAFE_DIVIDE(SUM(IF(p.n > 0, p.spend * p.k / p.n, 0)), SUM(IF(p.n > 0, p.spend, 0))) AS spend_weighted_ctr,
    SUM(p.k * p.k) AS kk,
    SUM(p.k * p.n) AS kn,
    SUM(p.n * p.n) AS nn
  FROM feature_values AS fv
  JOIN per_creative AS p ON p.unit_id = fv.unit_id
  GROUP BY fv.feature, fv.value
),
rates AS (
  SELECT
    agg.*,
    SAFE_DIVIDE(k, n) AS ctr,
    SAFE_DIVIDE(t.k_all - k, t.n_all - n) AS baseline_ctr
  FROM agg CROSS JOIN totals AS t
),
spread AS (
  SELECT
    rates.*,
    -- cluster-robust variance of K/N over the m creatives, and the binomial variance
    CASE WHEN m > 1 AND n > 0
      THEN m / (m - 1) * GREATEST(kk - 2 * ctr * kn + ctr * ctr * nn, 0) / (n * n) END AS var_cluster,
    CASE WHEN n > 0 THEN ctr * (1 - ctr) / n END AS var_binomial
  FROM rates
),
effective AS (
  SELECT
    spread.*,
    n / CASE WHEN var_binomial > 0 AND var_cluster > var_binomial THEN var_cluster / var_binomial ELSE 1 END AS n_eff
  FROM spread
),
interval_95 AS (
  SELECT
    effective.*,
    CASE WHEN n_eff > 0 THEN
      (ctr + 3.841459 / (2 * n_eff)) / (1 + 3.841459 / n_eff)
      - 1.959964 * SQRT(ctr * (1 - ctr) / n_eff + 3.841459 / (4 * n_eff * n_eff)) / (1 + 3.841459 / n_eff)
    END AS ctr_low,
    CASE WHEN n_eff > 0 THEN
      (ctr + 3.841459 / (2 * n_eff)) / (1 + 3.841459 / n_eff)
      + 1.959964 * SQRT(ctr * (1 - ctr) / n_eff + 3.841459 / (4 * n_eff * n_eff)) / (1 + 3.841459 / n_eff)
    END AS ctr_high
  FROM effective
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
  GREATEST(ctr_low, 0) AS ctr_low,
  LEAST(ctr_high, 1) AS ctr_high,
  n_eff AS effective_impressions,
  spend_weighted_ctr,
  SAFE_DIVIDE(spend, k) AS cpc,
  baseline_ctr,
  SAFE_DIVIDE(ctr, baseline_ctr) - 1 AS lift,
  CASE
    WHEN n < @min_impressions OR m < 2 OR baseline_ctr IS NULL THEN NULL
    WHEN ctr_low > baseline_ctr THEN 'above'
    WHEN ctr_high < baseline_ctr THEN 'below'
  END AS flag
FROM interval_95
