"""Query spans without the SDK's per-span machinery, for the samplers and processors we know.

Measured per query (bench/fastpath.py, tests in test_fastpath.py): the SDK's ``start_span`` +
``end`` costs ~25 us for a sampled span and ~5.7 us for a dropped one. A query span is a leaf
(never made current, no children, no events), so when the provider is the SDK's with a known
sampler and only Batch/Simple span processors, the hook:

- decides sampling itself, exactly as the SDK's sampler would: ``ParentBased`` follows the
  parent's sampled flag (a query under an unsampled request starts nothing); a
  ``TraceIdRatioBased`` root draws a random trace id and compares it with the sampler's bound;
- builds a sampled span once, finished, as the SDK's own ``ReadableSpan`` (same name, kind,
  ids, parent, trace flags and state, attributes, status, resource and scope) and hands it to
  the provider's span processors' ``on_end``, which is all the Batch and Simple processors use
  (their ``on_start`` does nothing): ~2.4 us.

Anything else (a custom sampler, processor, id generator or span limits) goes through
``tracer.start_span`` unchanged. Skipped: the SDK's own tracer self-metrics for these spans.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TraceFlags

__all__ = ["Sampling"]

_TRACE_ID_LIMIT = (1 << 64) - 1
_UNSET = Status(StatusCode.UNSET)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)


class _PreDrawnIds:
    """The tracer's id generator, able to hand out one trace id drawn in advance."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.next = 0

    def generate_trace_id(self) -> int:
        drawn, self.next = self.next, 0
        return drawn or int(self.inner.generate_trace_id())

    def generate_span_id(self) -> int:
        return int(self.inner.generate_span_id())

    def is_trace_id_random(self) -> bool:
        return bool(self.inner.is_trace_id_random())


class _Leaf:
    """A sampled query span, built as a ``ReadableSpan`` when it ends."""

    __slots__ = ("attributes", "maker", "name", "parent", "start_ns", "status", "trace_id")

    def __init__(
        self, maker: Sampling, name: str, attributes: Mapping[str, Any], parent: Any, trace_id: int
    ) -> None:
        self.maker = maker
        self.name = name
        self.attributes = attributes
        self.parent = parent
        self.trace_id = trace_id
        self.status = _UNSET
        self.start_ns = time.time_ns()

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes = {**self.attributes, key: value}  # the cached dict stays untouched

    def set_status(self, status: Status) -> None:
        self.status = status

    def end(self) -> None:
        from opentelemetry.sdk.trace import ReadableSpan

        maker, parent = self.maker, self.parent
        if parent is None:
            flags, state = _SAMPLED_RANDOM, None
        else:
            flags = _SAMPLED_RANDOM if parent.trace_flags.random_trace_id else _SAMPLED
            state = parent.trace_state
        context = trace.SpanContext(self.trace_id, random.getrandbits(64) or 1, False, flags, state)
        span = ReadableSpan(
            self.name,
            context,
            parent,
            maker.resource,
            self.attributes,
            kind=SpanKind.CLIENT,
            status=self.status,
            start_time=self.start_ns,
            end_time=time.time_ns(),
            instrumentation_scope=maker.scope,
        )
        maker.processor.on_end(span)


class Sampling:
    """The sampling decision (and, when safe, the span) taken before the SDK for one tracer."""

    def __init__(self, tracer: Any, *, children: bool, root: bool, bound: int | None) -> None:
        self.tracer = tracer
        #: ParentBased with the default children samplers: follow the parent's flag.
        self.children = children
        #: The root is always sampled (ALWAYS_ON, or ParentBased over it).
        self.root = root
        #: A TraceIdRatioBased root: sampled when (trace id & 2**64-1) < bound.
        self.bound = bound
        self.leaf = _leaf_safe(tracer)
        self.processor = tracer.span_processor
        self.resource = tracer.resource
        self.scope = tracer._instrumentation_scope
        self.enabled = getattr(tracer, "_is_enabled", lambda: True)
        if bound is not None and not self.leaf:
            tracer.id_generator = _PreDrawnIds(tracer.id_generator)

    @classmethod
    def of(cls, tracer: Any) -> Sampling | None:
        """Sampling for ``tracer``, or None when its sampler is not one we can decide for."""
        from opentelemetry.sdk.trace import Tracer as SdkTracer
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
        from opentelemetry.sdk.trace.sampling import (
            ALWAYS_OFF,
            ALWAYS_ON,
            ParentBased,
            TraceIdRatioBased,
        )

        if not isinstance(tracer, SdkTracer) or type(tracer.id_generator) is not RandomIdGenerator:
            return None
        sampler, root, children = tracer.sampler, tracer.sampler, False
        if type(sampler) is ParentBased:
            root = sampler._root
            children = (
                sampler._local_parent_sampled is ALWAYS_ON
                and sampler._remote_parent_sampled is ALWAYS_ON
                and sampler._local_parent_not_sampled is ALWAYS_OFF
                and sampler._remote_parent_not_sampled is ALWAYS_OFF
            )
            if not children:
                return None
        if root is ALWAYS_ON:
            return cls(tracer, children=children, root=True, bound=None)
        if type(root) is TraceIdRatioBased:  # a subclass may decide differently
            return cls(tracer, children=children, root=False, bound=root.bound)
        return None

    def start(self, name: str, attributes: Mapping[str, Any]) -> Any:
        """None (dropped), a leaf span, or the SDK's span when we cannot decide."""
        tracer = self.tracer
        if not self.enabled():
            return None
        parent = trace.get_current_span().get_span_context()
        if parent.is_valid:
            if not self.children:  # a bare root sampler: the SDK decides for children
                return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            if not parent.trace_flags.sampled:
                return None
            if self.leaf:
                return _Leaf(self, name, attributes, parent, parent.trace_id)
            return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
        trace_id = random.getrandbits(128) or 1
        if self.bound is not None and trace_id & _TRACE_ID_LIMIT >= self.bound:
            return None
        if self.leaf:
            return _Leaf(self, name, attributes, None, trace_id)
        if self.bound is not None:
            tracer.id_generator.next = trace_id
        return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)


def _leaf_safe(tracer: Any) -> bool:
    """Only the SDK's Batch/Simple processors (``on_start`` is a no-op) and default limits."""
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    processor = tracer.span_processor
    limits = tracer._span_limits
    return (
        type(processor) is SynchronousMultiSpanProcessor
        and all(
            type(p) in (BatchSpanProcessor, SimpleSpanProcessor) for p in processor._span_processors
        )
        and limits.max_span_attributes >= 16
        and limits.max_span_attribute_length is None
    )
