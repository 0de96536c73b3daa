"""OpenAPI at ``/schema`` (JSON at ``/schema/openapi.json``, interactive docs at ``/schema``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, Operation, Parameter, Schema, SecurityScheme

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
                "visitorToken": SecurityScheme(
                    type="http", scheme="bearer", description="visitor token from POST /api/widget/v1/session"
                ),
            }
        ),
        security=[{"apiKey": []}, {"session": []}],
    )


# -- Making the generated document exact ---------------------------------------------------------
# Litestar 2.25 derives the schema from the handlers but loses some of what msgspec enforces:
# ``additionalProperties: false`` of structs that forbid unknown fields, constraints whose value
# is 0 (``minimum: 0``), constraints of optional (``X | UNSET``) fields, and an empty
# per-operation ``security``. :func:`make_exact` rewrites those parts from msgspec's own JSON
# Schema of the request types (the decoder's rules, so the two cannot disagree) and from the
# routes' access rules.

_CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
)
_ATTRIBUTES = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "pattern": "pattern",
}
VISITOR_SCHEME = "visitorToken"
_BOUNDS = (("ge", "minimum"), ("le", "maximum"), ("gt", "exclusive_minimum"), ("lt", "exclusive_maximum"))


def _constraints(schema: dict[str, Any]) -> dict[str, Any]:
    """The constraints of a property schema, looking inside ``anyOf`` for the non-null member."""
    found = {key: schema[key] for key in _CONSTRAINTS if key in schema}
    for member in schema.get("anyOf", []):
        if member.get("type") != "null":
            found.update({key: member[key] for key in _CONSTRAINTS if key in member})
    return found


def _body_types(app: Litestar) -> list[Any]:
    types: list[Any] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            data = handler.parsed_fn_signature.parameters.get("data")
            if (
                data is not None
                and isinstance(data.annotation, type)
                and issubclass(data.annotation, msgspec.Struct)
            ):
                types.append(data.annotation)
    return types


def _exact_components(app: Litestar, document: OpenAPI) -> None:
    components = document.components.schemas if document.components else None
    if not components:
        return
    by_title = {schema.title: schema for schema in components.values() if isinstance(schema, Schema)}
    _, definitions = msgspec.json.schema_components(_body_types(app))
    for name, exact in definitions.items():
        target = by_title.get(exact.get("title", name)) or by_title.get(name)
        if target is None:
            continue
        if exact.get("additionalProperties") is False:
            target.additional_properties = False
        for field, field_schema in (exact.get("properties") or {}).items():
            prop = (target.properties or {}).get(field)
            if not isinstance(prop, Schema):
                continue
            for key, value in _constraints(field_schema).items():
                setattr(prop, _ATTRIBUTES[key], value)


def _exact_parameters(app: Litestar, document: OpenAPI) -> None:
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or not handler.include_in_schema:
                continue
            item = (document.paths or {}).get(route.path_format)
            if item is None:
                continue
            for method in handler.http_methods:
                operation = getattr(item, method.lower(), None)
                if operation is None:
                    continue
                _parameter_bounds(handler, operation)
                _operation_security(handler, route.path_format, operation)


def _parameter_bounds(handler: HTTPRouteHandler, operation: Operation) -> None:
    by_name = {
        parameter.name: parameter
        for parameter in operation.parameters or []
        if isinstance(parameter, Parameter)
    }
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        parameter = by_name.get(getattr(kwarg, "query", None) or name)
        if parameter is None or not isinstance(parameter.schema, Schema):
            continue
        for bound, attribute in (
            ("ge", "minimum"),
            ("le", "maximum"),
            ("gt", "exclusive_minimum"),
            ("lt", "exclusive_maximum"),
        ):
            value = getattr(kwarg, bound, None)
            if value is not None:
                setattr(parameter.schema, attribute, value)


def _operation_security(handler: HTTPRouteHandler, path: str, operation: Operation) -> None:
    """Public routes say so (``security: []``); the widget's say it takes a visitor token."""
    from server.api.access import ACCESS_OPT

    rule = handler.opt.get(ACCESS_OPT)
    if rule is None or getattr(rule, "authenticated", True):
        return
    takes_visitor_token = path.startswith("/api/widget/v1/") and path != "/api/widget/v1/session"
    operation.security = [{VISITOR_SCHEME: []}] if takes_visitor_token else []


def make_exact(app: Litestar) -> None:
    """Rewrite the app's OpenAPI document where Litestar's generation says less than the server does."""
    document = app.openapi_schema
    _exact_components(app, document)
    _exact_parameters(app, document)
