-- Every image hash known so far with the date its creative was first seen (grouping input).
SELECT h.*, c.first_seen_date
FROM {{ image_hashes }} AS h
JOIN {{ creatives }} AS c ON c.creative_id = h.creative_id
ORDER BY c.first_seen_date, h.creative_id
