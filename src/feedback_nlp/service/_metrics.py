"""Prometheus metrics of one service process, in its own registry (two apps in one process never clash)."""

from __future__ import annotations

from .._optional import require

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Requests, latencies, embedder batch sizes, queue depth and backlog size.

    Example:
        >>> m = Metrics()
        >>> m.requests.labels("GET", "/healthz", "200").inc()
        >>> b"feedback_nlp_requests_total" in m.render()
        True
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve", "the /metrics endpoint")
        self._prom = prom
        prom.disable_created_metrics()  # the *_created series only double the scrape size
        self.registry = prom.CollectorRegistry()
        r = self.registry
        self.requests = prom.Counter("feedback_nlp_requests", "HTTP requests by route template and status",
                                     ["method", "route", "status"], registry=r)
        self.latency = prom.Histogram("feedback_nlp_request_seconds", "request latency by route template",
                                      ["route"], buckets=_LATENCY_BUCKETS, registry=r)
        self.items = prom.Counter("feedback_nlp_items", "items received, by route template", ["route"], registry=r)
        self.batch_texts = prom.Histogram("feedback_nlp_embed_batch_texts", "texts per embedder pass",
                                          buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.batch_requests = prom.Histogram("feedback_nlp_embed_batch_requests", "requests sharing an embedder pass",
                                             buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.embed_seconds = prom.Histogram("feedback_nlp_embed_seconds", "seconds per embedder pass",
                                            buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = prom.Gauge("feedback_nlp_embed_queue_depth", "requests waiting for the embedder",
                                      registry=r)
        self.backlog_size = prom.Gauge("feedback_nlp_backlog_items", "items in the backlog store", registry=r)
        self.ready = prom.Gauge("feedback_nlp_ready", "1 once the models are loaded", registry=r)

    def observe_batch(self, texts: int, requests: int, seconds: float) -> None:
        self.batch_texts.observe(texts)
        self.batch_requests.observe(requests)
        self.embed_seconds.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return self._prom.generate_latest(self.registry)

    content_type = "text/plain; version=0.0.4; charset=utf-8"
