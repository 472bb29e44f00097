"""Prometheus text exposition of our OTel metrics, with the OTel Prometheus exporter.

``PrometheusExposition`` owns a private ``CollectorRegistry`` (never prometheus_client's global
one) and a ``PrometheusMetricReader`` bound to it. The reader maps OTel names to the names
Prometheus users expect: ``db.client.operation.duration`` in ``s`` becomes
``db_client_operation_duration_seconds_bucket`` / ``_sum`` / ``_count``. prometheus_client picks
the format (text 0.0.4 or OpenMetrics) from the request's Accept header.
"""

from __future__ import annotations

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

__all__ = ["PrometheusExposition"]


class PrometheusExposition:
    """A metric reader for an SDK MeterProvider, and the exposition of what it reads."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)

    def render(self, accept_header: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept_header or "")
        return encoder(self.registry), content_type
