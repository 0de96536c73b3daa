"""OPTIONS answers list every method a path serves (issue #10, item 6)."""

from __future__ import annotations

import httpx
from litestar import Litestar

from tests.api.world import build_world


def served_methods(app: Litestar) -> dict[str, set[str]]:
    """path -> every method its handlers declare (HEAD aside), from the app itself."""
    paths: dict[str, set[str]] = {}
    for route in app.routes:
        methods = set(getattr(route, "route_handler_map", {})) - {"HEAD"}
        if methods and route.path.startswith("/api/"):
            paths.setdefault(route.path_format, set()).update(methods | {"OPTIONS"})
    return paths


async def test_options_allow_lists_every_method_of_each_path(
    app: Litestar, client: httpx.AsyncClient
) -> None:
    world = await build_world()
    ids = {"project_id": world.project.id}
    checked = 0
    for path, methods in served_methods(app).items():
        if "{" in path.replace("{project_id}", ""):
            continue  # other ids: the same route objects, covered by the project routes
        response = await client.options(path.format(**ids), headers={"origin": "https://shop.example"})
        if path.startswith("/api/widget/"):
            continue  # CORS preflights are answered by the widget's CORS layer
        assert response.status_code == 204, (path, response.text)
        allowed = {m.strip() for m in response.headers["allow"].split(",")}
        assert allowed == methods, path
        checked += 1
    assert checked > 5
    project = await client.options(f"/api/v1/projects/{world.project.id}")
    assert {m.strip() for m in project.headers["allow"].split(",")} == {"GET", "PATCH", "DELETE", "OPTIONS"}
