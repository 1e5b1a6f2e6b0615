"""Process wiring of the compositor service: the standard bootstrap of libs.observability.bootstrap.

Routes: ``services.compositor.api``; consumers, extra tasks: ``services.compositor.wiring``, when present.
Media storage is ``ctx.object_store``.
"""

from __future__ import annotations

from pathlib import Path

from libs.observability.bootstrap import ServiceContext, build_standard, run_main
from services.compositor.settings import Settings

SERVICE = "compositor"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def build(settings: Settings) -> ServiceContext:
    """Connect and assemble the service without serving (tests use this)."""
    return await build_standard(SERVICE, settings, MIGRATIONS, with_object_store=True)


def main() -> None:
    run_main(SERVICE, Settings(), build)
