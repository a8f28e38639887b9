-- creative_fatigue: for every creative (a duplicate group once, by its canonical image; a video by itself), its daily
-- impressions and clicks by days live (days since the unit's first day with impressions), the CTR of its first 7 days
-- live and of its last 7 with 95 % intervals, a log-linear decay of CTR in days live shrunk toward the pool of all
-- creatives, the days for the fitted CTR to halve, and a fatigued flag. Grain: one row per unit. Rebuilt by the final
-- DAG over all dates.
-- params: min_drop=FLOAT64:0.2, min_impressions=INT64:5000
--
-- The decay is a weighted least-squares slope of log CTR, log((clicks + 0.5) / (impressions + 1)), on days live. A
-- day's weight is the inverse variance of its log CTR, n p / (1 - p) at the day's CTR p of a first fit, discounted
-- for the day-to-day spread (rho below); the slope's variance is 1 / Sxx, Sxx the weighted sum of squares of days
-- live. The slopes are then shrunk toward the pool (random effects: the DerSimonian-Laird spread of true slopes
-- tau^2; a slope with variance v moves v / (v + tau^2) of the way to the pooled mean): a creative with few impressions
-- is pulled most of the way, so noise alone does not make it decay. Early and recent intervals are Wilson's on the
-- same discounted impressions. Everything is a sum, so BigQuery computes it a pass per step.
{% from "stats.sql.jinja" import wilson, normal_95 %}
WITH daily AS (
  SELECT
    COALESCE(canonical_creative_id, creative_id) AS unit_id,
    date,
    -- days since a fixed date, so a first fit needs no first date (the slope is the same; sums stay small)
    DATE_DIFF(date, DATE '2020-01-01', DAY) AS d,
    ANY_VALUE(media_type) AS media_type,
    CAST(SUM(impressions) AS FLOAT64) AS n,
    CAST(LEAST(SUM(clicks), SUM(impressions)) AS FLOAT64) AS k,
    LN((LEAST(SUM(clicks), SUM(impressions)) + 0.5) / (SUM(impressions) + 1)) AS y
  FROM {{ ads_enriched }}
  WHERE creative_id IS NOT NULL AND impressions > 0
  GROUP BY unit_id, date
),
-- Calendar effects (a sale week, a holiday) are not fatigue. An impression-weighted first fit per unit (in the same
-- pass as its first and last day); each date's effect is the mean residual of all units live on it, taken out of that
-- date's log CTR before the final fit. (A calendar trend that is a straight line cannot be told from a common decay;
-- only its bends can.)
first_fits AS (
  SELECT
    unit_id,
    MIN(date) AS first_date,
    MAX(date) AS last_date,
    MIN(d) AS d_first,
    MAX(d) AS d_last,
    SAFE_DIVIDE(
      SUM(n * d * y) - SUM(n * d) * SUM(n * y) / SUM(n), SUM(n * d * d) - SUM(n * d) * SUM(n * d) / SUM(n)
    ) AS b,
    SUM(n * y) / SUM(n) AS y_mean,
    SUM(n * d) / SUM(n) AS d_mean
  FROM daily
  GROUP BY unit_id
),
calendar AS (
  SELECT dy.d, SUM(dy.n * (dy.y - f.y_mean - f.b * (dy.d - f.d_mean))) / SUM(dy.n) AS g
  FROM daily AS dy
  JOIN first_fits AS f ON f.unit_id = dy.unit_id
  WHERE f.b IS NOT NULL
  GROUP BY dy.d
),
fitted_days AS (
  SELECT
    dy.unit_id,
    dy.media_type,
    dy.n,
    dy.k,
    dy.y - COALESCE(c.g, 0) AS y,
    dy.d - f.d_first AS t,
    f.d_last - f.d_first AS t_last,
    LEAST(EXP(f.y_mean + COALESCE(f.b, 0) * (dy.d - f.d_mean) + COALESCE(c.g, 0)), 0.999) AS mu
  FROM daily AS dy
  JOIN first_fits AS f ON f.unit_id = dy.unit_id
  LEFT JOIN calendar AS c ON c.d = dy.d
),
-- Days vary more than binomial (audiences, placements): Var(clicks) = n p (1 - p) (1 + (n - 1) rho), one rho for
-- all days of all creatives, a moment estimate about the first fits.
day_overdispersion AS (
  SELECT
    LEAST(0.999, GREATEST(0.0, COALESCE(SAFE_DIVIDE(
      SUM(POW(k - n * mu, 2) - n * mu * (1 - mu)),
      SUM(n * (n - 1) * mu * (1 - mu))
    ), 0.0))) AS rho
  FROM fitted_days
),
-- we: the day's impressions discounted for that spread (the early and recent intervals); w: the inverse variance of
-- its log CTR at the fitted CTR of that day (the final fit: a decaying creative's late days are noisier).
weighted_days AS (
  SELECT
    fd.*,
    fd.n / (1 + (fd.n - 1) * o.rho) AS we,
    fd.n / (1 + (fd.n - 1) * o.rho) * fd.mu / (1 - fd.mu) AS w,
    o.rho
  FROM fitted_days AS fd
  CROSS JOIN day_overdispersion AS o
),
sums AS (
  SELECT
    unit_id,
    ANY_VALUE(media_type) AS media_type,
    ANY_VALUE(t_last) AS t_last,
    ANY_VALUE(rho) AS rho,
    COUNT(*) AS n_days,
    SUM(n) AS n,
    SUM(k) AS k,
    SUM(w) AS sw,
    SUM(w * t) AS s1,
    SUM(w * t * t) AS s2,
    SUM(w * y) AS sy,
    SUM(w * t * y) AS sty,
    SUM(IF(t <= 6, n, 0)) AS n_early,
    SUM(IF(t <= 6, k, 0)) AS k_early,
    SUM(IF(t <= 6, we, 0)) AS w_early,
    SUM(IF(t_last >= 13 AND t >= t_last - 6, n, 0)) AS n_recent,
    SUM(IF(t_last >= 13 AND t >= t_last - 6, k, 0)) AS k_recent,
    SUM(IF(t_last >= 13 AND t >= t_last - 6, we, 0)) AS w_recent,
    ARRAY_AGG(t ORDER BY t) AS day_index,
    ARRAY_AGG(CAST(n AS INT64) ORDER BY t) AS day_impressions,
    ARRAY_AGG(CAST(k AS INT64) ORDER BY t) AS day_clicks
  FROM weighted_days
  GROUP BY unit_id
),
fits AS (
  SELECT
    *,
    SAFE_DIVIDE(s1, sw) AS t_mean,
    s2 - SAFE_DIVIDE(s1 * s1, sw) AS sxx,
    k / n AS p,
    -- A slope needs three days with impressions and some clicks (and at least one click fewer than impressions).
    IF(n_days >= 3 AND k > 0 AND k < n AND sw > 0 AND s2 - s1 * s1 / sw > 0,
      SAFE_DIVIDE(sty - s1 * sy / sw, s2 - s1 * s1 / sw), NULL) AS raw_b
  FROM sums
),
slopes AS (
  SELECT *, IF(raw_b IS NULL, NULL, 1 / sxx) AS v FROM fits
),
fixed_pool AS (
  SELECT
    COUNT(*) AS m,
    SUM(1 / v) AS sw,
    SUM(1 / (v * v)) AS sww,
    SUM(raw_b / v) / SUM(1 / v) AS b_fixed
  FROM slopes
  WHERE v > 0
),
spread AS (
  SELECT
    GREATEST(0, COALESCE(SAFE_DIVIDE(SUM(POW(s.raw_b - fp.b_fixed, 2) / s.v) - (ANY_VALUE(fp.m) - 1),
      ANY_VALUE(fp.sw) - ANY_VALUE(fp.sww) / ANY_VALUE(fp.sw)), 0)) AS tau2
  FROM slopes AS s CROSS JOIN fixed_pool AS fp
  WHERE s.v > 0
),
pool AS (
  SELECT
    sp.tau2,
    SUM(s.raw_b / (s.v + sp.tau2)) / SUM(1 / (s.v + sp.tau2)) AS b_pool,
    1 / SUM(1 / (s.v + sp.tau2)) AS b_pool_var
  FROM slopes AS s CROSS JOIN spread AS sp
  WHERE s.v > 0
  GROUP BY sp.tau2
),
shrunk AS (
  SELECT
    s.*,
    po.b_pool,
    po.tau2,
    -- B: the share of the way to the pool (1 when the spread of true slopes is nil).
    IF(s.v > 0, s.v / (s.v + po.tau2), NULL) AS shrink,
    IF(s.v > 0, s.v / (s.v + po.tau2) * po.b_pool + po.tau2 / (s.v + po.tau2) * s.raw_b, NULL) AS decay,
    IF(
      s.v > 0,
      SQRT(s.v * po.tau2 / (s.v + po.tau2) + POW(s.v / (s.v + po.tau2), 2) * po.b_pool_var),
      NULL
    ) AS decay_se
  FROM slopes AS s CROSS JOIN pool AS po
),
windows AS (
  SELECT
    *,
    SAFE_DIVIDE(k_early, n_early) AS p_early,
    SAFE_DIVIDE(k_recent, n_recent) AS p_recent
  FROM shrunk
),
intervals AS (
  SELECT
    *,
    {{ wilson('p_early', 'w_early', 'low') }} AS early_low,
    {{ wilson('p_early', 'w_early', 'high') }} AS early_high,
    {{ wilson('p_recent', 'w_recent', 'low') }} AS recent_low,
    {{ wilson('p_recent', 'w_recent', 'high') }} AS recent_high
  FROM windows
)
SELECT
  i.unit_id,
  i.media_type,
  sp.first_date,
  sp.last_date,
  i.t_last + 1 AS days_live,
  i.n_days,
  CAST(i.n AS INT64) AS impressions,
  CAST(i.k AS INT64) AS clicks,
  CAST(i.n_early AS INT64) AS early_impressions,
  CAST(i.k_early AS INT64) AS early_clicks,
  i.p_early AS early_ctr,
  GREATEST(i.early_low, 0) AS early_ctr_low,
  LEAST(i.early_high, 1) AS early_ctr_high,
  CAST(i.n_recent AS INT64) AS recent_impressions,
  CAST(i.k_recent AS INT64) AS recent_clicks,
  i.p_recent AS recent_ctr,
  GREATEST(i.recent_low, 0) AS recent_ctr_low,
  LEAST(i.recent_high, 1) AS recent_ctr_high,
  SAFE_DIVIDE(i.p_recent, i.p_early) - 1 AS ctr_change,
  i.raw_b AS raw_decay,
  SQRT(i.v) AS raw_decay_se,
  i.decay,
  {{ normal_95('i.decay', 'i.decay_se', 'low') }} AS decay_low,
  {{ normal_95('i.decay', 'i.decay_se', 'high') }} AS decay_high,
  i.b_pool AS pool_decay,
  SQRT(i.tau2) AS pool_spread,
  IF(i.decay IS NULL, NULL, SAFE_DIVIDE(i.sy, i.sw) - i.decay * i.t_mean) AS fitted_intercept,
  IF(i.decay < 0, LN(2) / -i.decay, NULL) AS days_to_half,
  i.rho AS overdispersion,
  COALESCE(
    i.n_early >= @min_impressions AND i.n_recent >= @min_impressions
    AND i.recent_high < i.early_low * (1 - @min_drop),
    FALSE
  ) AS fatigued,
  i.day_index,
  i.day_impressions,
  i.day_clicks
FROM intervals AS i
JOIN first_fits AS sp ON sp.unit_id = i.unit_id
