"""Composing lifespans: ``Mount`` never runs a sub-app's lifespan, so the host combines them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

__all__ = ["Lifespan", "StateLifespan", "combine_lifespans"]

#: What a host may pass in: a lifespan that yields state, or yields None.
Lifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
#: What combine_lifespans returns: always yields a state mapping (Starlette's lifespan type).
StateLifespan = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any]]]


def combine_lifespans(*lifespans: Lifespan) -> StateLifespan:
    """One lifespan that enters ``lifespans`` in order and exits them in reverse.

    The state each one yields is merged (later keys win) and yielded to Starlette, which copies
    it into ``request.state``. If one fails to start, those already started are shut down.
    """
    if not lifespans:
        raise TypeError("combine_lifespans() needs at least one lifespan")

    @asynccontextmanager
    async def combined(app: Any) -> AsyncIterator[dict[str, Any]]:
        state: dict[str, Any] = {}
        async with AsyncExitStack() as stack:
            for lifespan in lifespans:
                part = await stack.enter_async_context(lifespan(app))
                if part:
                    state.update(part)
            yield state

    return combined
