"""Prometheus text exposition of our metrics, with the OTel Prometheus exporter.

``PrometheusExposition`` owns a private ``CollectorRegistry`` (never prometheus_client's global
one) and a ``PrometheusMetricReader`` bound to it, which also carries the histograms our
``MetricProducer`` hands over (producer.py). The exporter maps OTel names to the names
Prometheus users expect: ``db.client.operation.duration`` in ``s`` becomes
``db_client_operation_duration_seconds_bucket`` / ``_sum`` / ``_count``.

The format is OpenMetrics 1.0.0 when the Accept header asks for ``application/openmetrics-text``
(without a version, or with 1.0.0), and Prometheus text 0.0.4 otherwise. The header is read here,
never handed to prometheus_client: its own negotiation raises on a version it cannot parse
(``version=abc``), which made a public route answer 500.
"""

from __future__ import annotations

import re
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from .producer import MetricProducer

__all__ = ["PrometheusExposition", "wants_openmetrics"]

_OPENMETRICS = "application/openmetrics-text; version=1.0.0"
_MAX_ACCEPT = 4096  # scrapers send ~100 bytes; a longer header is read only this far
_VERSION = re.compile(r"version\s*=\s*\"?([^\";\s]*)\"?\s*", re.IGNORECASE)


def wants_openmetrics(accept_header: str | None) -> bool:
    """True when the client asks for OpenMetrics in a version we can serve (1.0.0, or none)."""
    for media_range in (accept_header or "")[:_MAX_ACCEPT].split(","):
        media, *params = media_range.split(";")
        if media.strip().lower() != "application/openmetrics-text":
            continue
        versions = [m.group(1) for p in params if (m := _VERSION.fullmatch(p.strip()))]
        quality = [p for p in params if p.strip().replace(" ", "") in {"q=0", "q=0.0", "q=0.00"}]
        if not quality and (not versions or versions[0] == "1.0.0"):
            return True
    return False


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
        """(body, content type) for a scrape with this Accept header; never raises on it."""
        chosen = _OPENMETRICS if wants_openmetrics(accept_header) else ""
        encoder, content_type = choose_encoder(chosen)
        return encoder(self.registry), content_type
