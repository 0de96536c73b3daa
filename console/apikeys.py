"""API keys (every signed-in user; admins see all): create, list, revoke.

The services of ``server/tenancy/apikeys.py`` with the viewer's own actor, exactly as
``/api/v1/api-keys``: a key can only be limited to a project the viewer belongs to. The secret is
in the answer to the create request only (rendered, not redirected, and never stored).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import checkbox, field_errors, form_data
from console.paging import pager_of
from console.render import Page, render
from console.shell import CurrentViewer, Need, Viewer, needs
from server.accounts.tables import User
from server.errors import DomainError, Invalid
from server.tenancy import apikeys
from server.tenancy.tables import Project

TEMPLATE = "console/apikeys.html"
PATH = "/console/api-keys"


async def _page(
    request: Request[Any, Any, Any],
    viewer: Viewer,
    *,
    created: apikeys.CreatedKey | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Page:
    pager = pager_of(request)
    keys, pager = pager.cut(await apikeys.list_api_keys(viewer.actor, limit=pager.fetch, offset=pager.offset))
    project_ids = {key.project for key in keys if key.project is not None}
    names = {p.id: p.name for p in viewer.projects}
    missing = project_ids - names.keys()
    if missing:
        rows = await Project.select(Project.id, Project.name).where(Project.id.is_in(list(missing)))
        names.update({row["id"]: row["name"] for row in rows})
    owners: dict[int, str] = {}
    if viewer.is_admin and keys:
        rows = await User.select(User.id, User.email).where(User.id.is_in(list({key.user for key in keys})))
        owners = {row["id"]: row["email"] for row in rows}
    context = {
        "section": "api-keys",
        "keys": keys,
        "pager": pager,
        "project_names": names,
        "owners": owners,
        "now": datetime.now(UTC),
        "created": created,
        "errors": errors or {},
        "values": values or {},
        "is_read_only": apikeys.is_read_only,
    }
    return render(request, TEMPLATE, context, status_code=status_code)


@get("/api-keys", name="console:api-keys", opt=needs(Need.SIGNED_IN))
async def keys_page(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    return await _page(request, viewer)


def _expiry(raw: str) -> datetime | None:
    """An expiry date from the form: the key works until the end of that day (UTC)."""
    if not raw.strip():
        return None
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise Invalid(
            "The expiry is not a date.", fields={"expires_at": "Use a date like 2027-01-31"}
        ) from None
    return datetime.combine(day, time.max, tzinfo=UTC)


def _project(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= 2**31 - 1:
        raise Invalid("No such project.", fields={"project_id": "No such project"})
    return int(raw)


@post("/api-keys", opt=needs(Need.SIGNED_IN))
async def create_key(request: Request[Any, Any, Any], viewer: CurrentViewer) -> Page:
    data = await form_data(request)
    try:
        created = await apikeys.create_api_key(
            viewer.actor,
            name=data.get("name", "")[:100],
            project_id=_project(data.get("project_id", "")),
            read_only=checkbox(data, "read_only"),
            expires_at=_expiry(data.get("expires_at", "")),
        )
    except DomainError as error:
        errors = field_errors(error)
        if error.code == "not_found":
            errors["project_id"] = "You cannot limit a key to this project"
        return await _page(request, viewer, errors=errors, values=data, status_code=422)
    return await _page(request, viewer, created=created)


@post("/api-keys/{key_id:int}/revoke", opt=needs(Need.SIGNED_IN))
async def revoke_key(request: Request[Any, Any, Any], viewer: CurrentViewer, key_id: FromPath[int]) -> Any:
    key = await apikeys.revoke_api_key(viewer.actor, key_id)
    return done(request, PATH, f"Revoked {key.name} ({key.prefix}…): it stops working now.")


route_handlers = [keys_page, create_key, revoke_key]
