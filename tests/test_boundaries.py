"""STYLE.md's import rules: the domain imports no transport; transports do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ("server.api", "server.realtime", "console", "tasks")
# The web app factory (server/web.py) is the composition root: it stands above the API and the
# console and mounts both; no transport imports it.
COMPOSITION_ROOT = "server.web"


def _module_of(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _transport_of(module: str) -> str | None:
    return next((t for t in TRANSPORTS if module == t or module.startswith(t + ".")), None)


def _python_files() -> list[Path]:
    files = [*ROOT.glob("server/**/*.py"), *ROOT.glob("console/**/*.py"), *ROOT.glob("tasks/**/*.py")]
    return [f for f in files if "migrations" not in f.parts]


def test_domain_imports_no_transport() -> None:
    offenders = []
    for path in _python_files():
        module = _module_of(path)
        if _transport_of(module) is not None or module in (
            "server.__main__",
            "server.devserver",
            COMPOSITION_ROOT,
        ):
            continue
        offenders += [f"{module} imports {name}" for name in _imports(path) if _transport_of(name)]
    assert offenders == []


def test_transports_do_not_import_each_other() -> None:
    offenders = []
    for path in _python_files():
        own = _transport_of(_module_of(path))
        if own is None:
            continue
        for name in _imports(path):
            other = _transport_of(name)
            if name == COMPOSITION_ROOT or (other is not None and other != own):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
