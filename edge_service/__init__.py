"""The IT-side results service: ingest, store, query, review, stats, live feed and the operator page."""
