"""``make dev``: the whole of Parley on one machine with nothing installed but Python.

1. Without ``DATABASE_URL`` / ``REDIS_URL`` it starts the embedded PostgreSQL and Valkey under
   ``.data/`` (kept across runs). With them set, nothing embedded starts.
2. Without ``SECRET_KEY`` it uses one generated once into ``.data/secret_key``.
3. It validates the settings, checks the listening ports are free, applies migrations, then
   runs the Procfile's long-running processes with honcho.
4. Ctrl-C or SIGTERM stops honcho (which stops every process) and then both servers. The servers
   run in a session of their own (:class:`~server.embedded.DetachedServers`), so the terminal's
   Ctrl-C never reaches them: they stop last, after every process has drained, and a normal stop
   logs no error.
"""

from __future__ import annotations

import ctypes.util
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import FrameType

from server.embedded import DetachedServers, EmbeddedServerError
from server.settings import ListenSettings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


class DevError(EmbeddedServerError):
    """The development stack cannot start; the message says why."""


def check_system_libraries() -> None:
    """socketify's prebuilt library links the system's libuv and zlib."""
    missing = [name for name in ("uv", "z") if ctypes.util.find_library(name) is None]
    if missing:
        packages = " ".join({"uv": "libuv1", "z": "zlib1g"}[name] for name in missing)
        raise DevError(
            f"missing system libraries for socketify: install them with 'apt-get install {packages}'"
        )


def secret_key(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def check_port_free(name: str, listen: ListenSettings) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((listen.host, listen.port))
        except OSError as error:
            raise DevError(
                f"{name} cannot listen on {listen.host}:{listen.port} ({error.strerror}); "
                f"stop what uses it or set {name.upper()}_PORT"
            ) from None


ENV_FILE = "running.env"


def write_env_file(data: Path, values: dict[str, str]) -> None:
    """Where commands run beside ``make dev`` (createadmin, migrate) find the embedded servers."""
    path = data / ENV_FILE
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)


def load_env_file() -> None:
    """Fill unset DATABASE_URL / REDIS_URL / SECRET_KEY from a running ``make dev``, if there is one."""
    path = data_dir() / ENV_FILE
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        if name and not os.environ.get(name, "").strip():
            os.environ[name] = value


def data_dir() -> Path:
    """Where the embedded servers keep their data: ``PARLEY_DATA_DIR``, by default ``.data/``."""
    return Path(os.environ.get("PARLEY_DATA_DIR", "").strip() or ROOT / ".data").resolve()


def run_dev(processes: list[str]) -> str:
    check_system_libraries()
    env = dict(os.environ)
    data = data_dir()
    if not env.get("SECRET_KEY", "").strip():
        env["SECRET_KEY"] = secret_key(data)
    embedded: DetachedServers | None = None
    if not env.get("DATABASE_URL", "").strip() or not env.get("REDIS_URL", "").strip():
        embedded = DetachedServers(data)
    try:
        if embedded is not None:
            urls = embedded.start()
            for name, url in urls.items():
                if not env.get(name, "").strip():
                    env[name] = url
            print(f"parley dev: embedded servers under {data} ({env['DATABASE_URL']}, {env['REDIS_URL']})")
            write_env_file(data, {name: env[name] for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")})
        try:
            settings = load_settings(env)
        except SettingsError as error:
            raise DevError(str(error)) from None
        check_port_free("web", settings.web)
        check_port_free("realtime", settings.realtime)
        migrate = subprocess.run([sys.executable, "-m", "server", "migrate"], env=env, cwd=ROOT, check=False)
        if migrate.returncode != 0:
            raise DevError("migrations failed (see above)")
        return _run_honcho(processes, env)
    finally:
        if embedded is not None:
            embedded.stop()
            (data / ENV_FILE).unlink(missing_ok=True)
            print("parley dev: embedded servers stopped")


def _run_honcho(processes: list[str], env: dict[str, str]) -> str:
    # The Procfile says `python` and `saq`: this interpreter's environment must come first.
    bin_dir = str(Path(sys.executable).parent)
    env = {**env, "PATH": os.pathsep.join([bin_dir, env.get("PATH", "")])}
    honcho = Path(bin_dir) / "honcho"
    command = [str(honcho), "-f", str(ROOT / "Procfile"), "-d", str(ROOT), "start", *processes]
    child = subprocess.Popen(command, env=env, cwd=ROOT)

    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        # Ctrl-C already reached honcho through the terminal's process group; SIGTERM did not.
        if signum == signal.SIGTERM and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    if stopping and code in (0, 130, 143, -signal.SIGINT, -signal.SIGTERM):
        return "parley dev: processes stopped"
    raise DevError(
        f"a process stopped on its own, so all were stopped (honcho exited with {code}); see above"
    )
