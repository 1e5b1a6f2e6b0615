"""Every service skeleton builds against real Postgres/Kafka and guards /v1 with Twilio Basic auth."""

import base64
import importlib
import os

import httpx
import pytest

from libs.db.testing import integration_env, unique_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.mark.parametrize("service", ["room", "recorder", "compositor", "hook"])
async def test_skeleton(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = integration_env()
    monkeypatch.setenv("POSTGRES_DSN", env["POSTGRES_DSN"])
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", env["KAFKA_BOOTSTRAP_SERVERS"])
    monkeypatch.setenv(
        "MIXDOWN_MASTER_KEY",
        env.get("MIXDOWN_MASTER_KEY") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    for name in ("S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_SECURE", "S3_REGION", "S3_BUCKET"):
        if name in env:
            monkeypatch.setenv(name, env[name])
    schema = unique_name(f"t_{service}_")
    monkeypatch.setenv(f"{service.upper()}_DB_SCHEMA", schema)
    main = importlib.import_module(f"services.{service}.main")
    settings_mod = importlib.import_module(f"services.{service}.settings")
    settings = settings_mod.Settings()
    assert settings.db_schema == schema
    ctx = await main.build(settings)
    try:
        account, token = await ctx.identity.create_account("skeleton-test")
        transport = httpx.ASGITransport(app=ctx.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert (
                "# HELP" in (await http.get("/metrics")).text
                or (await http.get("/metrics")).status_code == 200
            )
            anonymous = await http.get("/v1/Anything")
            assert anonymous.status_code == 401 and anonymous.json()["code"] == 20003
            wrong = await http.post("/v1/Rooms", auth=(account, "nope"))
            assert wrong.status_code == 401 and wrong.json()["code"] == 20003
            authed = await http.get("/v1/DefinitelyNotAResource", auth=(account, token))
            assert authed.status_code == 404 and authed.json()["code"] == 20404
        if service in ("recorder", "compositor"):
            assert ctx.object_store is not None
            assert [c.name for c in ctx.readiness] == ["postgres", "kafka", "s3"]
        tables = await ctx.pool.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema=$1", schema
        )
        assert {"outbox", "processed_events", "schema_migrations"} <= {r["table_name"] for r in tables}
    finally:
        await ctx.pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for check in ctx.readiness:
            if check.close is not None:
                await check.close()
        await ctx.pool.close()
