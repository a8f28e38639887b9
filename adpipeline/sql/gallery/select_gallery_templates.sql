-- One template per customer for one model (vectors of another model are never compared with these).
SELECT customer_id, template, photo_keys, photo_sha256s
FROM {{ gallery }}
WHERE model_id = @model_id
ORDER BY customer_id
