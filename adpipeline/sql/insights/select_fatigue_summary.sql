-- Counts for the Fatigue tab: creatives, those with a fitted decay, those flagged; the pool's decay and spread.
SELECT
  COUNT(*) AS n_units,
  COALESCE(COUNTIF(decay IS NOT NULL), 0) AS n_fitted,
  COALESCE(COUNTIF(fatigued), 0) AS n_fatigued,
  ANY_VALUE(pool_decay) AS pool_decay,
  ANY_VALUE(pool_spread) AS pool_spread,
  ANY_VALUE(overdispersion) AS overdispersion
FROM {{ creative_fatigue }}
