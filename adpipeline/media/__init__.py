"""Media: safe fetching, image facts and near-duplicates, video metadata."""
