"""``mixdown``: the operator CLI (identity migrations, accounts, API keys, plus service command groups).

Service command groups are discovered by importing ``services.<svc>.cli`` (``register(subparsers)``), e.g.
``mixdown callbacks …`` (notifier) and ``mixdown compose …`` (compositor). Each command sets ``func`` on its
parser: ``func(args) -> int`` (the exit status).

Configuration comes from the environment, with ``var/devstack.env`` filling in what is not set.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

from libs.auth.errors import UnknownAccount
from libs.auth.store import IdentityStore, migrate_identity
from libs.config import PlatformSettings, PostgresSettings
from libs.db.pool import create_pool
from libs.events.sids import AccountSid

REPO = Path(__file__).resolve().parents[1]
SERVICE_CLIS = ("room", "recorder", "compositor", "hook", "notifier")

Command = Callable[[IdentityStore, argparse.Namespace, TextIO], Awaitable[int]]


def load_env_file(path: Path, environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set ``KEY=VALUE`` lines of ``path`` into ``environ`` unless already set (missing file: no-op)."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        environ.setdefault(key.strip(), value.strip())


def _var_dir() -> Path:
    return Path(os.environ.get("MIXDOWN_VAR_DIR", str(REPO / "var")))


async def _with_identity(command: Command, args: argparse.Namespace, out: TextIO, *, needs_key: bool) -> int:
    # Listing never opens sealed values, so it works without the master key.
    master_key = PlatformSettings().master_key_bytes() if needs_key else bytes(32)
    pool = await create_pool(PostgresSettings().dsn, min_size=1, max_size=2)
    try:
        return await command(IdentityStore(pool, master_key), args, out)
    finally:
        await pool.close()


def _runner(command: Command, *, needs_key: bool = True) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return asyncio.run(_with_identity(command, args, sys.stdout, needs_key=needs_key))

    return run


def _run_migrate(args: argparse.Namespace) -> int:
    async def go() -> list[str]:
        pool = await create_pool(PostgresSettings().dsn, min_size=1, max_size=2)
        try:
            return await migrate_identity(pool)
        finally:
            await pool.close()

    applied = asyncio.run(go())
    print(f"identity: {len(applied)} migration(s) applied" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _accounts_create(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> int:
    sid, token = await store.create_account(args.friendly_name)
    if args.json:
        out.write(json.dumps({"sid": sid, "friendly_name": args.friendly_name, "auth_token": token}) + "\n")
    else:
        out.write(f"account_sid {sid}\nauth_token  {token}\n")
    return 0


async def _accounts_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> int:
    accounts = await store.list_accounts()
    if args.json:
        rows = [
            {
                "sid": a.sid,
                "friendly_name": a.friendly_name,
                "status": a.status,
                "date_created": a.date_created.isoformat(),
                "settings": a.settings,
            }
            for a in accounts
        ]
        out.write(json.dumps(rows) + "\n")
        return 0
    for a in accounts:
        out.write(f"{a.sid}  {a.status:<9}  {a.date_created:%Y-%m-%d %H:%M}  {a.friendly_name}\n")
    return 0


async def _keys_create(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> int:
    if not AccountSid.is_valid(args.account_sid):
        sys.stderr.write(f"not an account SID: {args.account_sid}\n")
        return 2
    try:
        sid, secret = await store.create_api_key(AccountSid(args.account_sid), args.friendly_name)
    except UnknownAccount:
        sys.stderr.write(f"unknown account: {args.account_sid}\n")
        return 1
    if args.json:
        payload = {"sid": sid, "account_sid": args.account_sid, "friendly_name": args.friendly_name}
        out.write(json.dumps({**payload, "secret": secret}) + "\n")
    else:
        out.write(f"api_key_sid {sid}\nsecret      {secret}\n(the secret is shown only now)\n")
    return 0


async def _keys_list(store: IdentityStore, args: argparse.Namespace, out: TextIO) -> int:
    if not AccountSid.is_valid(args.account_sid):
        sys.stderr.write(f"not an account SID: {args.account_sid}\n")
        return 2
    for key in await store.list_api_keys(AccountSid(args.account_sid)):
        out.write(f"{key.sid}  {key.date_created:%Y-%m-%d %H:%M}  {key.friendly_name}\n")
    return 0


def _register_service_clis(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for service in SERVICE_CLIS:
        name = f"services.{service}.cli"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                continue
            raise
        register = getattr(module, "register", None)
        if callable(register):
            register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixdown", description="Mixdown operator commands")
    sub = parser.add_subparsers(dest="command", required=True)

    migrate = sub.add_parser("migrate", help="apply the identity schema's migrations")
    migrate.set_defaults(func=_run_migrate)

    accounts = sub.add_parser("accounts", help="accounts (create, list)")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = acc_sub.add_parser("create", help="create an account; prints its SID and auth token")
    create.add_argument("--friendly-name", required=True)
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(func=_runner(_accounts_create))
    listing = acc_sub.add_parser("list", help="list accounts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_runner(_accounts_list, needs_key=False))

    keys = sub.add_parser("keys", help="API keys (create, list)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    key_create = keys_sub.add_parser("create", help="create an API key; the secret is shown only here")
    key_create.add_argument("--account-sid", required=True)
    key_create.add_argument("--friendly-name", required=True)
    key_create.add_argument("--json", action="store_true", help="print one JSON object")
    key_create.set_defaults(func=_runner(_keys_create))
    key_list = keys_sub.add_parser("list", help="list an account's API keys")
    key_list.add_argument("--account-sid", required=True)
    key_list.set_defaults(func=_runner(_keys_list, needs_key=False))

    _register_service_clis(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mixdown`` script; returns the exit status."""
    load_env_file(_var_dir() / "devstack.env")
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except ValueError as exc:  # configuration problems (e.g. MIXDOWN_MASTER_KEY missing)
        sys.stderr.write(f"mixdown: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"mixdown: cannot connect: {exc}\n")
        return 1
