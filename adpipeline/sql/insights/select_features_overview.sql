-- What the creatives contain: per feature, how many creatives have a value and the values most seen.
-- Reads feature_performance (all dates).
SELECT feature, COUNT(*) AS n_values, SUM(n_creatives) AS n_creative_values, COUNTIF(flag IS NOT NULL) AS n_flagged
FROM {{ feature_performance }}
GROUP BY feature
ORDER BY feature
