"""Silver: typed, validated, deduplicated and conformed tables, per domain."""
