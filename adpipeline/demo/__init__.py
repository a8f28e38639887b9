"""Demo data: a deterministic sample of creatives, videos with real faces, raw ads and their ground truth."""
