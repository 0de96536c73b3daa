"""Canned replies (managers): list and search, create, edit, delete.

The services of ``server/chat/canned.py`` with the API's own ``CannedReplyCreate`` /
``CannedReplyUpdate``; a taken shortcut (``shortcut_taken``) shows next to the shortcut field.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get, post
from litestar.params import FromPath

from console.flash import done
from console.forms import convert, field_errors, form_data
from console.paging import search_page
from console.render import Page, render
from console.shell import CurrentViewer, Need, needs
from server.chat import canned
from server.chat.canned import CannedReplyCreate, CannedReplyUpdate
from server.errors import DomainError

TEMPLATE = "console/canned.html"
EDIT_TEMPLATE = "console/canned_edit.html"
FIELDS = ("shortcut", "title", "body")


def canned_path(project_id: int) -> str:
    return f"/console/projects/{project_id}/canned-replies"


def _errors(error: DomainError) -> dict[str, str]:
    if error.code == "shortcut_taken":
        return {"shortcut": "Another reply already uses this shortcut.", "form": error.message}
    return field_errors(error)


async def _page(
    request: Request[Any, Any, Any],
    project_id: int,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    blocks: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Page:
    replies, paging = await search_page(request, partial(canned.list_canned_replies, project_id))
    context = {
        "section": "canned",
        "replies": replies,
        **paging,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, TEMPLATE, context, blocks=blocks, status_code=status_code, headers=headers)


@get("/projects/{project_id:int}/canned-replies", name="console:canned", opt=needs(Need.MANAGER))
async def canned_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    return await _page(request, project_id)


@get("/projects/{project_id:int}/canned-replies/search", opt=needs(Need.MANAGER))
async def search_replies(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Page:
    """The list alone, for the search box as the manager types (the page's ``canned_list`` block)."""
    query = request.query_params.get("q", "")[:100]
    address = canned_path(project_id) + (f"?{urlencode({'q': query})}" if query else "")
    return await _page(request, project_id, blocks=["canned_list"], headers={"HX-Push-Url": address})


@post("/projects/{project_id:int}/canned-replies", opt=needs(Need.MANAGER))
async def create_reply(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    values = {name: data.get(name, "") for name in FIELDS}
    try:
        created = await canned.create_canned_reply(
            project_id, viewer.user.id, convert(values, CannedReplyCreate)
        )
    except DomainError as error:
        return await _page(request, project_id, errors=_errors(error), values=values, status_code=422)
    return done(request, canned_path(project_id), f"Saved /{created.shortcut}.")


@get(
    "/projects/{project_id:int}/canned-replies/{reply_id:int}/edit",
    name="console:canned-edit",
    opt=needs(Need.MANAGER),
)
async def edit_page(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int], reply_id: FromPath[int]
) -> Page:
    reply = await canned.get_canned_reply(project_id, reply_id)
    return render(request, EDIT_TEMPLATE, {"section": "canned", "reply": reply, "values": {}, "errors": {}})


@post("/projects/{project_id:int}/canned-replies/{reply_id:int}/edit", opt=needs(Need.MANAGER))
async def update_reply(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int], reply_id: FromPath[int]
) -> Any:
    data = await form_data(request)
    values = {name: data.get(name, "") for name in FIELDS}
    try:
        updated = await canned.update_canned_reply(project_id, reply_id, convert(values, CannedReplyUpdate))
    except DomainError as error:
        reply = await canned.get_canned_reply(project_id, reply_id)
        context = {"section": "canned", "reply": reply, "values": values, "errors": _errors(error)}
        return render(request, EDIT_TEMPLATE, context, status_code=422)
    return done(request, canned_path(project_id), f"Saved /{updated.shortcut}.")


@post("/projects/{project_id:int}/canned-replies/{reply_id:int}/delete", opt=needs(Need.MANAGER))
async def delete_reply(
    request: Request[Any, Any, Any], viewer: CurrentViewer, project_id: FromPath[int], reply_id: FromPath[int]
) -> Any:
    reply = await canned.get_canned_reply(project_id, reply_id)
    await canned.delete_canned_reply(project_id, reply_id)
    return done(request, canned_path(project_id), f"Deleted /{reply.shortcut}.")


route_handlers = [canned_page, search_replies, create_reply, edit_page, update_reply, delete_reply]
