"""Parley's command line: ``python -m server <command>``.

    dev            start embedded servers when no URLs are set, migrate, run the Procfile
    migrate        apply pending migrations
    createadmin    create a global admin (password prompted, or read from standard input)
    mailbox        print the development mailbox (mail kept when no SMTP_URL is set)
    web            serve the HTTP app with granian
    realtime       serve the realtime gateway (socketify)
    fetch-assets   download pinned third-party browser assets into static/vendor

Expected failures print one line and exit non-zero; no stack traces for them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable

from server.settings import SettingsError


def _migrate(args: argparse.Namespace) -> str:
    from server.database import connection_pool
    from server.migrations import migrate

    async def run() -> list[str]:
        async with connection_pool():
            return await migrate(verbose=args.verbose)

    applied = asyncio.run(run())
    return f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")


def _createadmin(args: argparse.Namespace) -> str:
    from server.accounts.commands import createadmin, read_password
    from server.database import connection_pool
    from server.redis_client import make_redis
    from server.settings import load_redis_settings

    password = read_password(stdin_is_tty=sys.stdin.isatty())

    async def run() -> str:
        # Redis too: a --reset ends the user's console sessions with the password.
        redis = make_redis(load_redis_settings(os.environ))
        try:
            async with connection_pool():
                return await createadmin(redis, args.email, password, name=args.name, reset=args.reset)
        finally:
            await redis.aclose()

    return asyncio.run(run())


def _mailbox(args: argparse.Namespace) -> str:
    from server.mail.delivery import dev_mailbox
    from server.redis_client import make_redis
    from server.settings import get_settings

    async def run() -> str:
        redis = make_redis(get_settings().redis)
        try:
            mails = await dev_mailbox(redis, limit=args.limit)
        finally:
            await redis.aclose()
        return "\n\n".join(f"To: {mail.to}\nSubject: {mail.subject}\n\n{mail.text}" for mail in mails)

    return asyncio.run(run()) or "the development mailbox is empty"


def _dev(args: argparse.Namespace) -> str:
    from server.devserver import run_dev

    return run_dev(processes=args.processes)


def _web(args: argparse.Namespace) -> str:
    from server.api.serve import serve

    serve()
    return ""


def _realtime(args: argparse.Namespace) -> str:
    from server.realtime.serve import serve

    serve()
    return ""


def _fetch_assets(args: argparse.Namespace) -> str:
    from server.assets import fetch_assets

    return fetch_assets()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description="Parley command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Callable[[argparse.Namespace], str]] = {}

    dev = commands.add_parser("dev", help="run every process of the Procfile (embedded servers by default)")
    dev.add_argument("processes", nargs="*", default=["web", "realtime", "worker", "screenshots"])
    handlers["dev"] = _dev

    migrate = commands.add_parser("migrate", help="apply pending migrations")
    migrate.add_argument("--verbose", action="store_true", help="show Piccolo's own output")
    handlers["migrate"] = _migrate

    createadmin = commands.add_parser("createadmin", help="create a global admin")
    createadmin.add_argument("--email", required=True)
    createadmin.add_argument("--name", default="")
    createadmin.add_argument(
        "--reset", action="store_true", help="make an existing user an admin, new password"
    )
    handlers["createadmin"] = _createadmin

    mailbox = commands.add_parser("mailbox", help="print the development mailbox, newest first")
    mailbox.add_argument("--limit", type=int, default=5)
    handlers["mailbox"] = _mailbox
    commands.add_parser("web", help="serve the HTTP app (granian)")
    handlers["web"] = _web
    commands.add_parser("realtime", help="serve the realtime gateway (socketify)")
    handlers["realtime"] = _realtime
    commands.add_parser("fetch-assets", help="download pinned browser assets into static/vendor")
    handlers["fetch-assets"] = _fetch_assets

    args = parser.parse_args(argv)
    if args.command in ("migrate", "createadmin", "mailbox"):
        from server.devserver import load_env_file

        load_env_file()  # beside a running `make dev`, use its embedded servers
    from server.accounts.commands import CommandError
    from server.assets import AssetError
    from server.embedded import EmbeddedServerError
    from server.migrations import MigrationError

    try:
        message = handlers[args.command](args)
    except (SettingsError, CommandError, EmbeddedServerError, MigrationError, AssetError) as error:
        print(f"parley {args.command}: {error}", file=sys.stderr)
        return 2 if isinstance(error, SettingsError) else 1
    except KeyboardInterrupt:
        return 130
    except OSError as error:  # e.g. the database is unreachable
        print(f"parley {args.command}: {error}", file=sys.stderr)
        return 1
    if message:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
