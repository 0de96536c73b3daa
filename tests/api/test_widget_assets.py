"""The widget's files as `web` serves them: caching, compression, CORS, the size budget, the demo page."""

from __future__ import annotations

import gzip
import re
from typing import Any

import brotli
import httpx

from server.tenancy.tables import Project
from tests import factories as f

LOADER_BUDGET = 5 * 1024
"""The loader (what every page of a site downloads), gzip: DESIGN.md §10 and issue #13."""
TOTAL_BUDGET = 40 * 1024
"""Everything a visitor downloads to chat: loader, panel (with its styles and strings), client."""


def _modules(loader: str) -> list[str]:
    return re.findall(r"/widget/[a-z]+\.[0-9a-f]{12}\.js", loader)


async def test_loader_is_short_cached_and_names_hashed_modules(client: httpx.AsyncClient) -> None:
    response = await client.get("/widget.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "__PARLEY_MANIFEST__" not in response.text
    modules = _modules(response.text)
    assert len(modules) == 3, response.text[:400]  # panel, client, and the lazy snapshot chunk
    for path in modules:
        module = await client.get(path, headers={"accept-encoding": "identity"})
        assert module.status_code == 200, path
        assert module.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert module.headers["access-control-allow-origin"] == "*"  # import() fetches in CORS mode
    assert (await client.get("/widget/panel.000000000000.js")).status_code == 404


async def test_gzip_brotli_and_revalidation(client: httpx.AsyncClient) -> None:
    plain = await client.get("/widget.js", headers={"accept-encoding": "identity"})
    compressed = await client.get("/widget.js", headers={"accept-encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.content == plain.content  # httpx decodes gzip: the same file
    raw = await client.get("/widget.js", headers={"accept-encoding": "gzip, br"}, extensions={})
    assert raw.headers["content-encoding"] == "br"
    assert raw.headers["vary"] == "Accept-Encoding"
    etag = plain.headers["etag"]
    again = await client.get("/widget.js", headers={"if-none-match": etag})
    assert again.status_code == 304


async def test_size_budget() -> None:
    """Measured on the bytes served, compressed as served: no timing, no network."""
    from server.api.widget_assets import bundle

    files = bundle()
    loader = files.loader
    total = len(loader.gzip) + sum(len(asset.gzip) for asset in files.hashed.values())
    assert len(loader.gzip) <= LOADER_BUDGET, f"loader is {len(loader.gzip)} B gzip (budget {LOADER_BUDGET})"
    assert total <= TOTAL_BUDGET, f"the widget is {total} B gzip (budget {TOTAL_BUDGET})"
    assert gzip.decompress(loader.gzip) == loader.raw
    assert brotli.decompress(loader.brotli) == loader.raw
    assert all(len(asset.brotli) <= len(asset.gzip) for asset in files.hashed.values())


async def test_demo_page_needs_the_servers_origin_or_development(client: httpx.AsyncClient, app: Any) -> None:
    """The test client's host is not loopback: like production, the origin must be allowed."""
    project = await f.make_project(name="Acme")
    assert (await client.get(f"/demo/{project.public_key}")).status_code == 404
    own_origin = str(client.base_url).rstrip("/")
    await Project.update({Project.allowed_origins: [own_origin]}).where(Project.id == project.id)
    await _forget_cached(app, project.public_key)
    page = await client.get(f"/demo/{project.public_key}")
    assert page.status_code == 200, page.text
    assert f'data-project="{project.public_key}"' in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in page.text  # no inline script, only the widget's tag
    assert (await client.get("/demo/pk_unknown")).status_code == 404


async def _forget_cached(app: Any, public_key: str) -> None:
    from server.redis_client import Keys
    from server.web_state import redis_of

    await redis_of(app).delete(Keys.project_by_public_key(public_key))
