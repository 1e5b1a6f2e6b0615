"""The standard wiring of a Mixdown service process, shared by ``services/<svc>/main.py``.

``build_service`` connects Postgres, applies the service's migrations (and the identity schema's), creates
the identity store and Basic authenticator, the app (health, readiness, metrics, Twilio errors), an auth
middleware that answers every unauthenticated ``/v1/...`` request with Twilio's 401 / 20003, and the outbox
relay task.

Extension points for the service's own modules (imported only when present):
- ``services.<svc>.api``: ``router`` (an APIRouter) or ``create_router(ctx) -> APIRouter``;
- ``services.<svc>.wiring``: ``async def setup(ctx: ServiceContext) -> None`` to add consumers
  (``ctx.runner.add_task``), readiness checks (``ctx.readiness``), closers and state before serving.
Routes read the caller with ``Depends(libs.auth.basic.request_principal)``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CollectorRegistry

from libs.auth.basic import BasicAuthenticator
from libs.auth.store import IdentityStore, migrate_identity
from libs.config import KafkaSettings, PlatformSettings, PostgresSettings
from libs.db.migrate import migrate
from libs.db.outbox import OutboxRelay
from libs.db.pool import create_pool
from libs.events.topics import ensure_topics
from libs.observability.health import ReadinessCheck, create_app, kafka_check, postgres_check, s3_check
from libs.observability.http_metrics import install_http_metrics
from libs.observability.logs import configure_logging
from libs.observability.runner import ServiceRunner
from libs.storage.port import ObjectStore
from libs.twilio.errors import TwilioError

logger = logging.getLogger(__name__)

API_PREFIX = "/v1/"


@dataclass
class ServiceContext:
    """Everything a service's wiring code needs; built once per process."""

    service: str
    settings: Any
    pool: asyncpg.Pool
    identity: IdentityStore
    authenticator: BasicAuthenticator
    registry: CollectorRegistry
    app: FastAPI
    runner: ServiceRunner
    relay: OutboxRelay
    readiness: list[ReadinessCheck] = field(default_factory=list)
    object_store: ObjectStore | None = None


def ctx_close_checks(checks: list[ReadinessCheck]) -> Callable[[], Awaitable[None]]:
    """A closer releasing the clients held by readiness checks (the Kafka probe)."""

    async def close() -> None:
        for check in checks:
            if check.close is not None:
                await check.close()

    return close


def optional_module(name: str) -> ModuleType | None:
    """Import ``name`` if that module exists; errors inside an existing module propagate."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (exc.name == name or name.startswith(exc.name + ".")):
            return None
        raise


def install_auth_middleware(
    app: FastAPI, authenticator: BasicAuthenticator, prefix: str = API_PREFIX
) -> None:
    """Authenticate every request under ``prefix``; the Principal goes to ``request.state.principal``."""

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith(prefix):
            try:
                request.state.principal = await authenticator.authenticate(
                    request.headers.get("authorization")
                )
            except TwilioError as exc:
                return exc.response()
        return await call_next(request)


def _include_api(ctx: ServiceContext) -> None:
    api = optional_module(f"services.{ctx.service}.api")
    if api is None:
        return
    factory = getattr(api, "create_router", None)
    router = factory(ctx) if callable(factory) else getattr(api, "router", None)
    if isinstance(router, APIRouter):
        ctx.app.include_router(router)
        logger.info("api router mounted", extra={"service": ctx.service, "routes": len(router.routes)})


async def build_service(
    service: str,
    settings: Any,
    *,
    kafka: KafkaSettings,
    postgres: PostgresSettings,
    platform: PlatformSettings,
    host: str,
    port: int,
    db_schema: str,
    migrations_dir: Path,
    relay_name: str | None = None,
    create_topics: bool = True,
    object_store: ObjectStore | None = None,
) -> ServiceContext:
    """Connect, migrate and assemble the service (see module docstring). Nothing is served yet."""
    pool = await create_pool(postgres.dsn, min_size=postgres.min_pool_size, max_size=postgres.max_pool_size)
    try:
        await migrate_identity(pool)
        await migrate(pool, db_schema, migrations_dir)
        if create_topics:
            await ensure_topics(kafka.bootstrap_servers)
        identity = IdentityStore(pool, platform.master_key_bytes())
        if object_store is not None:
            try:
                await object_store.ensure_bucket()
            except Exception as exc:  # storage down at boot: /readyz reports it, the service still starts
                logger.warning("object store unavailable at start", extra={"error": type(exc).__name__})
    except BaseException:
        await pool.close()
        raise
    authenticator = BasicAuthenticator(identity)
    registry = CollectorRegistry()
    readiness = [postgres_check(pool), kafka_check(kafka.bootstrap_servers)]
    if object_store is not None:
        readiness.append(s3_check(object_store))
    app = create_app(service, registry=registry, readiness=readiness)
    install_http_metrics(app, service, registry)
    readiness = app.state.readiness_checks
    install_auth_middleware(app, authenticator)
    runner = ServiceRunner(app, host=host, port=port, service=service)
    relay = OutboxRelay(pool, db_schema, kafka.bootstrap_servers, relay_name or service, registry=registry)
    runner.add_task("outbox-relay", relay.run)
    runner.add_closer(pool.close)
    runner.add_closer(ctx_close_checks(readiness))
    ctx = ServiceContext(
        service=service,
        settings=settings,
        pool=pool,
        identity=identity,
        authenticator=authenticator,
        registry=registry,
        app=app,
        runner=runner,
        relay=relay,
        readiness=readiness,
        object_store=object_store,
    )
    app.state.ctx = ctx
    _include_api(ctx)
    wiring = optional_module(f"services.{service}.wiring")
    setup = getattr(wiring, "setup", None) if wiring is not None else None
    if callable(setup):
        result = setup(ctx)
        if inspect.isawaitable(result):
            await result
    return ctx


async def build_standard(
    service: str, settings: Any, migrations_dir: Path, *, with_object_store: bool = False
) -> ServiceContext:
    """``build_service`` from a service's standard Settings (kafka, postgres, platform, s3 parts, host, port,
    db_schema, relay_name); with ``with_object_store`` the MinIO store becomes ``ctx.object_store``."""
    from libs.storage import MinioObjectStore  # the storage client only where a service stores media

    return await build_service(
        service,
        settings,
        kafka=settings.kafka,
        postgres=settings.postgres,
        platform=settings.platform,
        host=settings.host,
        port=settings.port,
        db_schema=settings.db_schema,
        migrations_dir=migrations_dir,
        relay_name=settings.relay_name,
        object_store=MinioObjectStore(settings.s3) if with_object_store else None,
    )


def run_main(service: str, settings: Any, build: Callable[[Any], Awaitable[ServiceContext]]) -> None:
    """The process entry point of a service: logging, build, serve until SIGTERM/SIGINT."""
    configure_logging(service, settings.log_level)

    async def serve() -> None:
        ctx = await build(settings)
        await ctx.runner.serve()

    asyncio.run(serve())
