"""Canned replies: agents list and search; managers create, change and delete."""

from __future__ import annotations

from litestar import delete, get, patch, post
from litestar.params import JSONBody

from server.api.access import CurrentActor, project_role
from server.api.params import ProjectId, ReplyId, SearchText
from server.chat import canned
from server.chat.canned import CannedReplyCreate, CannedReplyUpdate, CannedReplyView
from server.tenancy.access import ProjectRole

BASE = "/projects/{project_id:int}/canned-replies"


@get(BASE, opt=project_role(ProjectRole.AGENT), summary="List canned replies; q searches shortcut and title")
async def list_canned_replies(project_id: ProjectId, q: SearchText = None) -> list[CannedReplyView]:
    return await canned.list_canned_replies(project_id, q)


@post(BASE, opt=project_role(ProjectRole.MANAGER), summary="Create a canned reply (managers)")
async def create_canned_reply(
    actor: CurrentActor, project_id: ProjectId, data: JSONBody[CannedReplyCreate]
) -> CannedReplyView:
    return await canned.create_canned_reply(project_id, actor.user_id, data)


@patch(
    BASE + "/{reply_id:int}",
    opt=project_role(ProjectRole.MANAGER),
    summary="Change a canned reply (managers)",
)
async def update_canned_reply(
    project_id: ProjectId, reply_id: ReplyId, data: JSONBody[CannedReplyUpdate]
) -> CannedReplyView:
    return await canned.update_canned_reply(project_id, reply_id, data)


@delete(
    BASE + "/{reply_id:int}",
    opt=project_role(ProjectRole.MANAGER),
    status_code=204,
    summary="Delete (managers)",
)
async def delete_canned_reply(project_id: ProjectId, reply_id: ReplyId) -> None:
    await canned.delete_canned_reply(project_id, reply_id)


route_handlers = [list_canned_replies, create_canned_reply, update_canned_reply, delete_canned_reply]
