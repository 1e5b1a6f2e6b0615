"""Operator commands: `mixdown callbacks list|show|replay` (talks to the notifier's schema directly)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TextIO

from libs.db.pool import create_pool
from services.notifier.settings import Settings
from services.notifier.store import STATES, DeliveryRecord, DeliveryStore

Command = Callable[[DeliveryStore, argparse.Namespace, TextIO], Awaitable[int]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `callbacks` command group to the `mixdown` parser."""
    callbacks = subparsers.add_parser("callbacks", help="status callback deliveries (list, show, replay)")
    sub = callbacks.add_subparsers(dest="callbacks_command", required=True)

    list_cmd = sub.add_parser("list", help="list deliveries, newest first")
    list_cmd.add_argument("--state", choices=STATES)
    list_cmd.add_argument("--account-sid")
    list_cmd.add_argument("--limit", type=int, default=50)
    list_cmd.add_argument("--json", action="store_true", help="one JSON document on stdout")
    list_cmd.set_defaults(func=_runner(_list))

    show = sub.add_parser("show", help="one delivery with its parameters")
    show.add_argument("id", type=int)
    show.set_defaults(func=_runner(_show))

    replay = sub.add_parser("replay", help="send dead deliveries again")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all-dead", action="store_true")
    replay.add_argument("--account-sid", help="with --all-dead: only this account")
    replay.set_defaults(func=_runner(_replay))


def _runner(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_with_store(command, args, sys.stdout))

    return run


async def _with_store(command: Command, args: argparse.Namespace, out: TextIO) -> int:
    settings = Settings()
    pool = await create_pool(settings.postgres.dsn, min_size=1, max_size=2)
    try:
        return await command(DeliveryStore(pool, settings.db_schema), args, out)
    finally:
        await pool.close()


def _line(record: DeliveryRecord) -> str:
    status = "-" if record.last_status is None else str(record.last_status)
    return (
        f"{record.id:>8}  {record.state:<10}  {record.attempts:>3}  {status:>4}  {record.event_type:<24}  "
        f"{record.account_sid}  {record.created_at:%Y-%m-%dT%H:%M:%SZ}  {record.last_error or ''}"
    )


async def _list(store: DeliveryStore, args: argparse.Namespace, out: TextIO) -> int:
    records = await store.list(state=args.state, account_sid=args.account_sid, limit=args.limit)
    if args.json:
        json.dump({"callbacks": [r.as_json() for r in records]}, out, indent=2)
        out.write("\n")
        return 0
    out.write(f"{'id':>8}  {'state':<10}  {'try':>3}  {'http':>4}  {'event':<24}  account  created  error\n")
    for record in records:
        out.write(_line(record) + "\n")
    return 0


async def _show(store: DeliveryStore, args: argparse.Namespace, out: TextIO) -> int:
    record = await store.get(args.id)
    if record is None:
        out.write(f"no delivery {args.id}\n")
        return 1
    json.dump(record.as_json(), out, indent=2)
    out.write("\n")
    return 0


async def _replay(store: DeliveryStore, args: argparse.Namespace, out: TextIO) -> int:
    if args.all_dead:
        count = await store.replay_all_dead(args.account_sid)
        out.write(f"replayed {count} dead deliveries\n")
        return 0
    if await store.replay(args.id):
        out.write(f"replayed delivery {args.id}\n")
        return 0
    record = await store.get(args.id)
    out.write(
        f"no delivery {args.id}\n" if record is None else f"delivery {args.id} is {record.state}, not dead\n"
    )
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (`python -m services.notifier.cli callbacks list`), same as `mixdown callbacks`."""
    parser = argparse.ArgumentParser(prog="mixdown")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
