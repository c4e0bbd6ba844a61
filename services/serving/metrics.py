"""Prometheus metrics of the serving endpoint, in a registry of its own.

Labels come from fixed sets only: the endpoint is one of the service's routes or
``other``, the status an HTTP code, the reason one of a handful of words. BentoML's own
HTTP metrics are switched off because they label every request with its raw path, so a
request for ``/patients/<an SSN>`` would put the SSN in ``/metrics`` (and let any client
grow the label set without bound). Nothing here is per patient: predicted risk is a
histogram of aggregate counts.
"""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROUTES = ("/v1/predict", "/v1/predict/batch", "/metrics", "/readyz")
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_RISK_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def endpoint_label(path: str) -> str:
    return path if path in ROUTES else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "serving_request_duration_seconds",
            "Time from the request's arrival to its response, by endpoint and status.",
            ["endpoint", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "serving_errors",
            "Requests answered with an error, by endpoint, status and reason.",
            ["endpoint", "status", "reason"],
            registry=self.registry,
        )
        self.risk = Histogram(
            "serving_predicted_risk",
            "Predicted probability of the contract's label, one observation per record.",
            buckets=_RISK_BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "serving_model_version",
            "The registry version of the champion being served (0: none yet).",
            registry=self.registry,
            multiprocess_mode="liveall",
        )
        self.swaps = Counter(
            "serving_model_swaps", "Champion versions swapped in.", registry=self.registry
        )
        self.capture_dropped = Counter(
            "serving_capture_dropped_records",
            "Scored records not captured: the buffer was full or the store refused a batch.",
            registry=self.registry,
        )

        self.gc_tracked = Gauge(
            "serving_gc_tracked_objects",
            "Objects the garbage collector scans (frozen ones excluded), counted at scrape.",
            registry=self.registry,
        )
        self.gc_tracked.set_function(lambda: len(gc.get_objects()))

    def request(self, endpoint: str, status: int, seconds: float, reason: str) -> None:
        self.latency.labels(endpoint, str(status)).observe(seconds)
        if status >= 400:
            self.errors.labels(endpoint, str(status), reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
