"""The OpenAPI document says what the server enforces (issue #10, item 6)."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from server.api.access import ACCESS_OPT


def document(app: Litestar) -> dict[str, Any]:
    schema = app.openapi_schema.to_schema()
    return dict(schema)


def component(doc: dict[str, Any], title: str) -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = doc["components"]["schemas"]
    (found,) = [schema for schema in schemas.values() if schema.get("title") == title]
    return found


def test_request_bodies_refuse_unknown_fields_and_keep_zero_minimums(app: Litestar) -> None:
    doc = document(app)
    for title in (
        "ConversationUpdate",
        "SessionRequest",
        "IdentityClaim",
        "ProjectUpdate",
        "InvitationCreate",
    ):
        assert component(doc, title)["additionalProperties"] is False, title
    assert component(doc, "ConversationUpdate")["properties"]["priority"]["minimum"] == 0
    assert component(doc, "ReadMark")["properties"]["seq"]["minimum"] == 0
    assert component(doc, "SetPasswordRequest")["properties"]["password"]["minLength"] == 8
    assert component(doc, "UserCreate")["properties"]["password"]["minLength"] == 8
    messages = doc["paths"]["/api/v1/projects/{project_id}/conversations/{conversation_id}/messages"]["get"]
    bounds = {p["name"]: p["schema"].get("minimum") for p in messages["parameters"]}
    assert bounds["after_seq"] == 0 and bounds["before_seq"] == 0


def test_public_routes_declare_their_own_security(app: Litestar) -> None:
    doc = document(app)
    public = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            rule = handler.opt.get(ACCESS_OPT)
            if rule is None or rule.authenticated or not handler.include_in_schema:
                continue
            for method in handler.http_methods:
                operation = doc["paths"][route.path_format][method.lower()]
                public.append((route.path_format, operation["security"]))
    assert ("/api/v1/auth/login", []) in public and ("/api/widget/v1/session", []) in public
    assert ("/api/widget/v1/messages", [{"visitorToken": []}]) in public
    assert all(security in ([], [{"visitorToken": []}]) for _, security in public)
    signed_in = doc["paths"]["/api/v1/projects"]["get"]
    assert "security" not in signed_in and doc["security"] == [{"apiKey": []}, {"session": []}]
