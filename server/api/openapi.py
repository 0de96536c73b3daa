"""OpenAPI at ``/schema`` (JSON at ``/schema/openapi.json``, interactive docs at ``/schema``)."""

from __future__ import annotations

from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

DESCRIPTION = """Parley's REST API. Everything the console and the widget do is here.

Authenticate with an API key (`Authorization: Bearer prly_...`, see `POST /api/v1/api-keys`) or
the console session cookie from `POST /api/v1/auth/login` (then send `X-CSRF-Token` on unsafe
requests). Errors are JSON: `{"code": "...", "message": "...", "fields": {...}}`.
Ids of another project answer 404, exactly like ids that do not exist.
"""


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Parley API",
        version="1.0.0",
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/"), JsonRenderPlugin(), YamlRenderPlugin()],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="prly_... API key"),
                "session": SecurityScheme(type="apiKey", name="parley_session", security_scheme_in="cookie"),
            }
        ),
        security=[{"apiKey": []}, {"session": []}],
    )
