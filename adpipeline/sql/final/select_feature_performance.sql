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
{% from "features.sql.jinja" import unit_feature_columns, feature_keys %}
{% from "stats.sql.jinja" import wilson %}
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
    {{ unit_feature_columns() }}
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
{{ feature_keys('per_creative', only_param='@feature') }},
feature_values AS (
  SELECT fk.feature, fk.value, u.n_ads, u.n, u.k, u.spend, u.conversions, u.w, u.p, u.rho
  FROM feature_keys AS fk
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
    {{ wilson('est', 'w', 'low') }} AS ctr_low,
    {{ wilson('est', 'w', 'high') }} AS ctr_high
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
