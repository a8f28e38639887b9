-- The dates ads_enriched covers (the features page's default range).
SELECT MIN(date) AS first_day, MAX(date) AS last_day FROM {{ ads_enriched }}
