"""Prometheus metrics of the results service (served at /metrics)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

INGESTED = Counter("inspection_results_ingested_total", "Results stored (new, not duplicates)", registry=REGISTRY)
DUPLICATES = Counter("inspection_results_duplicate_total", "Results received again and not stored twice",
                     registry=REGISTRY)
INGEST_LATENCY = Histogram("inspection_ingest_request_seconds", "Time to handle one ingest request",
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                           registry=REGISTRY)
STORED = Gauge("inspection_results_stored", "Results in the database", registry=REGISTRY)
REJECTED = Counter("inspection_requests_rejected_total", "Requests refused, by reason", ["reason"],
                   registry=REGISTRY)
IMAGES_DELETED = Counter("inspection_images_deleted_total",
                         "Images removed by retention: age, bytes, or forced (an unreviewed FAIL's image, "
                         "only when the byte limit left no other choice)", ["reason"], registry=REGISTRY)
IMAGE_BYTES = Gauge("inspection_image_bytes", "Bytes of stored images after the last retention pass",
                    registry=REGISTRY)
STREAM_CLIENTS = Gauge("inspection_stream_clients", "Open live-stream connections", registry=REGISTRY)
