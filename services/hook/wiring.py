"""Background work of the hook service: consume recording.events and compose finished rooms."""

from __future__ import annotations

import asyncio
import functools

from libs.events.base import Event
from libs.events.consumer import EventConsumer
from libs.events.topics import RECORDING_EVENTS
from libs.observability.bootstrap import ServiceContext
from libs.twilio.dates import utcnow
from services.hook.handlers import handle
from services.hook.store import HookStore


def setup(ctx: ServiceContext) -> None:
    """Register the recording.events consumer (group ``HOOK_CONSUMER_GROUP``)."""
    settings = ctx.settings
    consumer = EventConsumer(
        settings.kafka.bootstrap_servers, [RECORDING_EVENTS], settings.consumer_group, registry=ctx.registry
    )
    handler = functools.partial(
        handle,
        pool=ctx.pool,
        hooks=HookStore(ctx.pool, settings.db_schema),
        schema=settings.db_schema,
        now=utcnow,
    )

    async def consume(stop: asyncio.Event) -> None:
        async def on_event(event: Event) -> None:
            await handler(event)

        await consumer.run_until(on_event, stop)

    ctx.runner.add_task("recording-events", consume)
