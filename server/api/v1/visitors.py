"""Visitors of a project, hydrated with presence and current page from Redis."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from server.api.access import project_role
from server.api.params import Cursor, Limit, ProjectId, VisitorId
from server.chat import queries
from server.chat.views import VisitorPage, VisitorProfile, VisitorView
from server.tenancy.access import ProjectRole
from server.web_state import redis_of


@get("/projects/{project_id:int}/visitors", opt=project_role(ProjectRole.AGENT), summary="List visitors")
async def list_visitors(
    request: Request[Any, Any, Any], project_id: ProjectId, limit: Limit = 50, cursor: Cursor = None
) -> VisitorPage:
    return await queries.list_visitors(redis_of(request.app), project_id, limit=limit, cursor=cursor)


@get(
    "/projects/{project_id:int}/visitors/{visitor_id:int}",
    opt=project_role(ProjectRole.AGENT),
    summary="A visitor",
)
async def get_visitor(
    request: Request[Any, Any, Any], project_id: ProjectId, visitor_id: VisitorId
) -> VisitorView:
    return await queries.get_visitor(redis_of(request.app), project_id, visitor_id)


@get(
    "/projects/{project_id:int}/visitors/{visitor_id:int}/profile",
    opt=project_role(ProjectRole.AGENT),
    summary="A visitor with device, page trail (last 20) and conversations: the inbox side panel",
)
async def visitor_profile(
    request: Request[Any, Any, Any], project_id: ProjectId, visitor_id: VisitorId
) -> VisitorProfile:
    return await queries.visitor_profile(redis_of(request.app), project_id, visitor_id)


route_handlers = [list_visitors, get_visitor, visitor_profile]
