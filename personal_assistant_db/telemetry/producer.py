"""Our in-process histograms, handed to OpenTelemetry exporters at collection time.

The OTel Python SDK has no MetricProducer hook, so ``MetricProducer.merge_into`` adds our metrics
to the SDK's ``MetricsData`` as one more ScopeMetrics. ``PrometheusExposition`` (prometheus.py)
does it for scrapes; ``ProducingMetricExporter`` does it for any push exporter (OTLP).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .metrics import BucketHistogram

__all__ = ["MetricProducer", "ProducingMetricExporter"]

SCOPE = InstrumentationScope("personal_assistant_db")


class MetricProducer:
    """Turns our BucketHistograms into OTel SDK metric data at collection time."""

    def __init__(self, histograms: Iterable[BucketHistogram] = ()) -> None:
        self.histograms = list(histograms)
        self.start_ns = time.time_ns()

    def produce(self) -> list[Metric]:
        now = time.time_ns()
        metrics = (h.metric(self.start_ns, now) for h in self.histograms)
        return [m for m in metrics if m is not None]

    def merge_into(self, data: MetricsData | None, resource: Resource | None = None) -> MetricsData:
        """``data`` plus our metrics, as one more ScopeMetrics of the first resource."""
        produced = self.produce()
        if data is None or not data.resource_metrics:
            rm = ResourceMetrics(
                resource=resource or Resource.create({}), scope_metrics=[], schema_url=""
            )
            data = MetricsData(resource_metrics=[rm])
        if not produced:
            return data
        first, *rest = data.resource_metrics
        ours = ScopeMetrics(scope=SCOPE, metrics=produced, schema_url="")
        merged = ResourceMetrics(
            resource=first.resource,
            scope_metrics=[*first.scope_metrics, ours],
            schema_url=first.schema_url,
        )
        return MetricsData(resource_metrics=[merged, *rest])


class ProducingMetricExporter(MetricExporter):
    """Wraps any OTel MetricExporter (e.g. OTLP) so that each export carries our histograms.

    Use it in the host's reader: ``PeriodicExportingMetricReader(
    ProducingMetricExporter(OTLPMetricExporter(), telemetry.producer))``.
    """

    def __init__(self, inner: MetricExporter, producer: MetricProducer) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.producer = producer

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        merged = self.producer.merge_into(metrics_data)
        return self.inner.export(merged, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)
