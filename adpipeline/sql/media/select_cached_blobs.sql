-- Earlier good fetches of the URLs @urls: a URL seen again is served from the bucket by its sha256.
-- params: urls=ARRAY<STRING>:https://x/img_a|https://x/v2.mp4
SELECT url, ANY_VALUE(sha256) AS sha256, ANY_VALUE(blob_path) AS blob_path
FROM {{ media_fetches }}
WHERE status = 'ok' AND sha256 IS NOT NULL AND url IN UNNEST(@urls)
GROUP BY url
