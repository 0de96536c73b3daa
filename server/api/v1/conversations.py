"""Conversations (hydrated inbox list, one conversation) and their messages."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from server.api.access import CurrentActor, project_role
from server.api.params import (
    AssigneeFilter,
    ConversationId,
    Cursor,
    Limit,
    ProjectId,
    SearchText,
    Seq,
    StatusFilter,
    UnassignedFilter,
    VisitorUidFilter,
)
from server.chat import queries
from server.chat.views import ConversationCounts, ConversationPage, ConversationView, MessageList
from server.tenancy.access import ProjectRole
from server.web_state import redis_of

BASE = "/projects/{project_id:int}/conversations"


@get(BASE, opt=project_role(ProjectRole.AGENT), summary="The inbox: newest activity first, keyset-paginated")
async def list_conversations(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    status: StatusFilter = None,
    assignee_id: AssigneeFilter = None,
    unassigned: UnassignedFilter = False,
    visitor_uid: VisitorUidFilter = None,
    q: SearchText = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ConversationPage:
    """``unread_count`` is the calling user's; ``q`` searches visitor name, e-mail and message text."""
    filters = queries.ConversationFilters(
        status=status,
        assignee_id=assignee_id,
        unassigned=unassigned,
        visitor_uid=visitor_uid,
        search=q,
        reader_id=actor.user_id,
    )
    return await queries.list_conversations(
        redis_of(request.app), project_id, filters, limit=limit, cursor=cursor
    )


@get(
    BASE + "/counts",
    opt=project_role(ProjectRole.AGENT),
    summary="How many conversations each inbox filter holds (per status: all, mine, unassigned)",
)
async def conversation_counts(actor: CurrentActor, project_id: ProjectId) -> ConversationCounts:
    return await queries.conversation_counts(project_id, actor.user_id)


@get(BASE + "/{conversation_id:int}", opt=project_role(ProjectRole.AGENT), summary="A conversation")
async def get_conversation(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    conversation_id: ConversationId,
) -> ConversationView:
    return await queries.get_conversation(
        redis_of(request.app), project_id, conversation_id, reader_id=actor.user_id
    )


@get(
    BASE + "/{conversation_id:int}/messages",
    opt=project_role(ProjectRole.AGENT),
    summary="Messages in seq order: after_seq (forward), before_seq (back), or the newest",
)
async def list_messages(
    project_id: ProjectId,
    conversation_id: ConversationId,
    after_seq: Seq = None,
    before_seq: Seq = None,
    limit: Limit = 50,
) -> MessageList:
    return await queries.list_messages(
        project_id, conversation_id, after_seq=after_seq, before_seq=before_seq, limit=limit
    )


route_handlers = [list_conversations, conversation_counts, get_conversation, list_messages]
