"""The widget's browser files: ``/widget.js`` (the loader) and ``/widget/<name>.<hash>.js``.

The loader is what sites paste, so its URL never changes: it is cached for minutes. It names the
rest (the panel and the shared protocol client) by content hash, so those are cached for a year
and a new release is picked up as soon as the loader is. Every file is compressed once with gzip
and brotli and served in what the browser accepts. The widget runs on other sites' pages and
loads its modules with ``import()``, which fetches in CORS mode: every file allows any origin.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from server.api.access import public

ROOT = Path(__file__).resolve().parent.parent.parent / "static"
LOADER = ROOT / "widget" / "loader.js"
MODULES = {
    "panel": ROOT / "widget" / "panel.js",
    "client": ROOT / "js" / "parley-client.js",
    "snapshot": ROOT / "widget" / "snapshot.js",
}
"""``snapshot`` is loaded only when an agent asks a project with DOM snapshots on for one."""
MANIFEST_PLACEHOLDER = '"__PARLEY_MANIFEST__"'
LOADER_MAX_AGE = 300
HASHED_MAX_AGE = 31_536_000


@dataclass(frozen=True, slots=True)
class Asset:
    raw: bytes
    gzip: bytes
    brotli: bytes
    etag: str


def _asset(raw: bytes) -> Asset:
    return Asset(
        raw=raw,
        gzip=gzip.compress(raw, compresslevel=9, mtime=0),
        brotli=brotli.compress(raw, quality=11),
        etag='"' + hashlib.sha256(raw).hexdigest()[:16] + '"',
    )


@dataclass(frozen=True, slots=True)
class Bundle:
    loader: Asset
    hashed: dict[str, Asset]
    """``panel.<hash>.js`` -> the asset."""
    stamp: tuple[float, ...]


_bundle: Bundle | None = None


def _stamp() -> tuple[float, ...]:
    return tuple(path.stat().st_mtime for path in (LOADER, *MODULES.values()))


def bundle() -> Bundle:
    """Built on first use and again whenever a file changed on disk (cheap stats; dev edits)."""
    global _bundle
    stamp = _stamp()
    if _bundle is None or _bundle.stamp != stamp:
        hashed: dict[str, Asset] = {}
        manifest: dict[str, str] = {}
        for name, path in MODULES.items():
            raw = path.read_bytes()
            file_name = f"{name}.{hashlib.sha256(raw).hexdigest()[:12]}.js"
            hashed[file_name] = _asset(raw)
            manifest[name] = f"/widget/{file_name}"
        loader = LOADER.read_bytes().replace(MANIFEST_PLACEHOLDER.encode(), json.dumps(manifest).encode())
        _bundle = Bundle(loader=_asset(loader), hashed=hashed, stamp=stamp)
    return _bundle


def _response(request: Request[Any, Any, Any], asset: Asset, max_age: int) -> Response[bytes]:
    headers = {
        "cache-control": f"public, max-age={max_age}" + (", immutable" if max_age == HASHED_MAX_AGE else ""),
        "access-control-allow-origin": "*",
        "cross-origin-resource-policy": "cross-origin",
        "vary": "Accept-Encoding",
        "etag": asset.etag,
        "x-content-type-options": "nosniff",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    accepted = request.headers.get("accept-encoding", "")
    body = asset.raw
    if "br" in accepted:
        body, headers["content-encoding"] = asset.brotli, "br"
    elif "gzip" in accepted:
        body, headers["content-encoding"] = asset.gzip, "gzip"
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


@get("/widget.js", opt=public(), include_in_schema=False)
async def widget_loader(request: Request[Any, Any, Any]) -> Response[bytes]:
    return _response(request, bundle().loader, LOADER_MAX_AGE)


@get("/widget/{file_name:str}", opt=public(), include_in_schema=False)
async def widget_module(request: Request[Any, Any, Any], file_name: FromPath[str]) -> Response[bytes]:
    asset = bundle().hashed.get(file_name)
    if asset is None:
        raise NotFoundException("No such widget file (an old release? reload the page).")
    return _response(request, asset, HASHED_MAX_AGE)
