"""Process wiring of the compositor service: settings → pool, migrations, auth, app, outbox relay → serve.

The generic part lives in ``libs.observability.bootstrap``. This service's routes come from
``services.compositor.api``, its consumers and extra tasks from ``services.compositor.wiring``, when present.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from libs.observability.bootstrap import ServiceContext, build_service
from libs.observability.logs import configure_logging
from libs.storage import MinioObjectStore
from services.compositor.settings import Settings

SERVICE = "compositor"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def build(settings: Settings) -> ServiceContext:
    """Connect and assemble the service without serving (tests use this). Storage: ``ctx.object_store``."""
    return await build_service(
        SERVICE,
        settings,
        kafka=settings.kafka,
        postgres=settings.postgres,
        platform=settings.platform,
        host=settings.host,
        port=settings.port,
        db_schema=settings.db_schema,
        migrations_dir=MIGRATIONS,
        relay_name=settings.relay_name,
        object_store=MinioObjectStore(settings.s3),
    )


async def serve(settings: Settings) -> None:
    """Build, then serve until SIGTERM/SIGINT."""
    ctx = await build(settings)
    await ctx.runner.serve()


def main() -> None:
    settings = Settings()
    configure_logging(SERVICE, settings.log_level)
    asyncio.run(serve(settings))
