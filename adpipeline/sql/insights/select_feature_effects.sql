-- The adjusted effects of one feature's values (feature_effects), for the Features tab beside the unadjusted ones.
-- params: feature=STRING:cta_kind
SELECT *
FROM {{ feature_effects }}
WHERE feature = @feature
ORDER BY value
