"""Data quality: per-day checks read from the contracts, write-check-publish, profiles."""
