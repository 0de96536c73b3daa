"""A static test site on loopback (a fake of the customer's web site, outside the system)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

PAINT = (0, 153, 119)
"""The colour the plain page paints edge to edge: the tests look for it in the image."""

PLAIN = f"""<!doctype html><html><head><title>Plain</title></head>
<body style="margin:0;background:rgb{PAINT};height:100vh"><h1 style="margin:0;color:#fff">Parley</h1>
</body></html>"""

PRIVATE_SUBRESOURCES = f"""<!doctype html><html><head><title>Private</title>
<link rel="stylesheet" href="http://10.255.255.1/style.css">
<script src="http://[fd00::1]/x.js"></script></head>
<body style="margin:0;background:rgb{PAINT};height:100vh">
<img src="http://169.254.169.254/latest/meta-data/iam.png" alt="">
<img src="http://192.168.0.1/router.png" alt=""></body></html>"""

POPUP = f"""<!doctype html><html><body style="margin:0;background:rgb{PAINT};height:100vh">
<script>window.open("/plain?popup=1"); location.href.length;</script>
<a id="dl" href="/download" download>file</a><script>document.getElementById("dl").click()</script>
</body></html>"""


def heavy_page(items: int = 1500) -> str:
    """A page with many nodes, styles and images of its own origin (the benchmark's heavy page)."""
    rows = "".join(
        f'<div class="card"><img src="/tile/{i % 40}.svg" width="32" height="32" alt="">'
        f"<h3>Item {i}</h3><p>Lorem ipsum dolor sit amet, item {i} of the catalogue.</p></div>"
        for i in range(items)
    )
    style = (
        "body{margin:0;font-family:sans-serif;background:#f4f4f8}"
        ".card{display:inline-block;width:280px;margin:8px;padding:8px;border-radius:8px;"
        "box-shadow:0 2px 6px rgba(0,0,0,.2);background:linear-gradient(#fff,#eef)}"
    )
    return f"<!doctype html><html><head><style>{style}</style></head><body>{rows}</body></html>"


def tile(number: int) -> str:
    hue = (number * 37) % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
        f'<circle cx="16" cy="16" r="14" fill="hsl({hue},70%,50%)"/></svg>'
    )


@dataclass
class LoopbackSite:
    url: str
    hits: Counter[str] = field(default_factory=Counter)


async def start_site() -> tuple[LoopbackSite, web.AppRunner]:
    hits: Counter[str] = Counter()

    @web.middleware
    async def count(request: web.Request, handler: object) -> web.StreamResponse:
        hits[request.path_qs] += 1
        return await handler(request)  # type: ignore[operator, no-any-return]

    async def html(body: str) -> web.Response:
        return web.Response(text=body, content_type="text/html")

    async def never(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/html"})
        await response.prepare(request)
        await response.write(b"<!doctype html><html><head><title>Never")
        await asyncio.Event().wait()  # until the client goes away
        return response

    async def redirect_private(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def tile_svg(request: web.Request) -> web.Response:
        return web.Response(text=tile(int(request.match_info["n"])), content_type="image/svg+xml")

    app = web.Application(middlewares=[count])
    app.router.add_get("/plain", lambda r: html(PLAIN))
    app.router.add_get("/private-subresources", lambda r: html(PRIVATE_SUBRESOURCES))
    app.router.add_get("/popup", lambda r: html(POPUP))

    async def download(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 100, content_type="application/zip")

    app.router.add_get("/download", download)
    app.router.add_get("/heavy", lambda r: html(heavy_page()))
    app.router.add_get("/big", lambda r: html(PLAIN + "<!--" + "x" * 3_000_000 + "-->"))
    app.router.add_get("/tile/{n}.svg", tile_svg)
    app.router.add_get("/never", never)
    app.router.add_get("/redirect-private", redirect_private)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return LoopbackSite(url=f"http://127.0.0.1:{port}", hits=hits), runner
