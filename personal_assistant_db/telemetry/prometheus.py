"""Prometheus text exposition of our metrics, with the OTel Prometheus exporter.

``PrometheusExposition`` owns a private ``CollectorRegistry`` (never prometheus_client's global
one) and a ``PrometheusMetricReader`` bound to it, which also carries the histograms our
``MetricProducer`` hands over (producer.py). The exporter maps OTel names to the names
Prometheus users expect: ``db.client.operation.duration`` in ``s`` becomes
``db_client_operation_duration_seconds_bucket`` / ``_sum`` / ``_count``. prometheus_client picks
the format (text 0.0.4 or OpenMetrics) from the request's Accept header.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .producer import MetricProducer

__all__ = ["PrometheusExposition"]


class _ProducingReader(PrometheusMetricReader):
    producer: MetricProducer

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        super()._receive_metrics(self.producer.merge_into(metrics_data), timeout_millis, **kwargs)


class PrometheusExposition:
    """A metric reader for an SDK MeterProvider, and the exposition of what it reads."""

    def __init__(self, producer: MetricProducer) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reader = _ProducingReader(registry=self.registry, scope_info_enabled=False)
        self.reader.producer = producer

    def render(self, accept_header: str | None = None) -> tuple[bytes, str]:
        """(body, content type) for a scrape with this Accept header."""
        encoder, content_type = choose_encoder(accept_header or "")
        return encoder(self.registry), content_type
