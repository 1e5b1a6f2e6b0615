"""Process wiring of the hook service: the standard bootstrap of libs.observability.bootstrap.

Routes: ``services.hook.api``; consumers, extra tasks: ``services.hook.wiring``, when present.
"""

from __future__ import annotations

from pathlib import Path

from libs.observability.bootstrap import ServiceContext, build_standard, run_main
from services.hook.settings import Settings

SERVICE = "hook"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def build(settings: Settings) -> ServiceContext:
    """Connect and assemble the service without serving (tests use this)."""
    return await build_standard(SERVICE, settings, MIGRATIONS)


def main() -> None:
    run_main(SERVICE, Settings(), build)
