"""Prometheus metrics of the line runner (served on the edge box's status port at /metrics)."""

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry()

FRAMES = Counter("line_frames_total", "Frames taken from the source", registry=REGISTRY)
DROPPED = Counter("line_frames_dropped_total", "Live frames dropped because inference was busy (oldest first)",
                  registry=REGISTRY)
CORRUPT = Counter("line_frames_corrupt_total", "Frames that could not be decoded or had the wrong shape",
                  registry=REGISTRY)
RESULTS = Counter("line_results_total", "Results committed to the outbox", ["verdict"], registry=REGISTRY)
LATENCY = Histogram("line_capture_to_commit_seconds", "Frame captured to result committed in the outbox",
                    buckets=(0.005, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.1, 0.25, 1, 5), registry=REGISTRY)
SOURCE_STATE = Gauge("line_source_state", "1 for the source's current state", ["state"], registry=REGISTRY)
SOURCE_REOPENS = Counter("line_source_reopens_total", "Times the watchdog reopened the source", registry=REGISTRY)
DELIVERED = Counter("line_delivered_total", "Results delivered, by destination", ["dest"], registry=REGISTRY)
DELIVERY_ERRORS = Counter("line_delivery_errors_total", "Failed delivery attempts (retried)", ["dest"],
                          registry=REGISTRY)
REJECTED = Counter("line_rejected_total", "Results a destination refused for good (set aside)", ["dest"],
                   registry=REGISTRY)
OUTBOX_DEPTH = Gauge("line_outbox_depth", "Results waiting for delivery", ["dest"], registry=REGISTRY)
OUTBOX_AGE = Gauge("line_outbox_oldest_age_seconds", "Age of the oldest undelivered result", ["dest"],
                   registry=REGISTRY)
IMAGE_ERRORS = Counter("line_image_write_errors_total", "Local images that could not be written (disk full, ...)",
                       registry=REGISTRY)
FAILED = Counter("line_frames_failed_total", "Frames taken but neither inspected and committed: a stage crashed "
                 "on them or the runner stopped on an error", registry=REGISTRY)
STAGE_CRASHES = Counter("line_stage_crashes_total", "Unexpected exceptions in a stage (logged with traceback)",
                        ["stage"], registry=REGISTRY)
STAGE_RESTARTS = Counter("line_stage_restarts_total", "Stage restarts by the supervisor", ["stage"],
                         registry=REGISTRY)
STAGE_UP = Gauge("line_stage_up", "1 while the stage's thread runs", ["stage"], registry=REGISTRY)
STATE = Gauge("line_state", "1 for the runner's current state", ["state"], registry=REGISTRY)
UNACKNOWLEDGED = Counter("line_unacknowledged_total", "Results sent but not named in the far side's acknowledgement "
                         "(sent again)", ["dest"], registry=REGISTRY)
OUTBOX_FULL = Gauge("line_outbox_disk_full", "1 while the outbox's disk is full (inspection paused)", registry=REGISTRY)
DRIFT_KS = Gauge("line_score_drift_ks", "Kolmogorov-Smirnov distance of the PASS scores in the drift window from "
                 "the model's good scores (NaN until the window holds drift.min_count PASS parts)", registry=REGISTRY)
DRIFT_KS_CRITICAL = Gauge("line_score_drift_ks_critical", "The KS distance's 1 % critical value for the window's "
                          "counts: above it, look at lighting and camera", registry=REGISTRY)
DRIFT_MEAN_SHIFT = Gauge("line_score_drift_mean_shift", "(mean PASS score in the window - good mean) / good std",
                         registry=REGISTRY)
DRIFT_MEDIAN_Z = Gauge("line_score_drift_median_z", "(median score of all parts in the window - good median) / its "
                       "standard error: beyond +-2.58, look at lighting and camera", registry=REGISTRY)
DRIFT_ALERT = Gauge("line_score_drifting", "1 while the scores have drifted (KS above its critical value or "
                    "|median z| > 2.58)",
                    registry=REGISTRY)
DRIFT_COUNT = Gauge("line_score_drift_window_parts", "PASS parts in the drift window", registry=REGISTRY)


class TriggerCounters(Collector):
    """Trigger mode's handshake counters, read from the handshake at each scrape (the same figures as
    ``/status`` and the OPC UA Counters; nothing is counted twice). Empty until :meth:`watch` is given a
    source: a free-running station has no trigger metrics."""

    COUNTERS = (("triggers", "line_triggers", "Triggers taken from the PLC (Modbus, OPC UA, POST /trigger)"),
                ("ok", "line_trigger_ok", "Triggers answered OK"),
                ("ng", "line_trigger_ng", "Triggers answered NG"),
                ("errors", "line_trigger_errors", "Triggers answered with an error: missed plus refused"),
                ("missed", "line_trigger_missed", "Triggers answered by an error result (busy, camera error, "
                 "inspection failed)"),
                ("refused", "line_trigger_refused", "Triggers refused at once without a result (buffer full, "
                 "not ready, bad part id)"),
                ("buffer_full", "line_trigger_buffer_full_refusals", "Triggers refused because the result buffer "
                 "was full"),
                ("ack_errors", "line_trigger_ack_errors", "Acknowledges refused (unknown sequence number, "
                 "out of order)"))

    def __init__(self) -> None:
        self._source: Callable[[], Any] | None = None

    def watch(self, source: Callable[[], Any] | None) -> None:
        """``source()`` returns an object with the handshake's counters as attributes (``Counters``)."""
        self._source = source

    def collect(self) -> Iterator[Metric]:
        if self._source is None:
            return
        c = self._source()
        for attr, name, text in self.COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(c, attr))
        timing = GaugeMetricFamily("line_trigger_processing_seconds", "Trigger to result committed, as the "
                                   "station timed it: min, mean and max since start", labels=["stat"])
        for stat in ("min", "mean", "max"):
            timing.add_metric([stat], getattr(c, f"processing_ms_{stat}") / 1e3)
        yield timing

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the families exist only while a source is watched


TRIGGERS = TriggerCounters()
REGISTRY.register(TRIGGERS)
