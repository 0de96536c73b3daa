"""Writing to a conversation over REST: send a message or note, change status/assignee/priority, read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, patch, post
from litestar.params import JSONBody
from msgspec import UNSET, UnsetType

from server.api.access import CurrentActor, project_role
from server.api.params import ConversationId, ProjectId
from server.chat import queries, services
from server.chat.schemas import MessageCreate, MessageKind, SendAck, SendMessage
from server.chat.views import ConversationView, Status
from server.errors import Invalid
from server.tenancy.access import ProjectRole
from server.web_state import redis_of, sender_of

BASE = "/projects/{project_id:int}/conversations/{conversation_id:int}"


class ConversationUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields present change; ``assignee_id: null`` unassigns."""

    status: Status | UnsetType = UNSET
    assignee_id: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | UnsetType | None = UNSET
    priority: Annotated[int, msgspec.Meta(ge=0, le=4)] | UnsetType = UNSET
    snoozed_until: datetime | UnsetType = UNSET
    """With ``status: "snoozed"`` (or alone): reopen at this time (ISO 8601 with a time zone)."""


class ReadMark(msgspec.Struct, forbid_unknown_fields=True):
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]


class ReadAck(msgspec.Struct):
    conversation_id: int
    seq: int


@post(
    BASE + "/messages",
    opt=project_role(ProjectRole.AGENT),
    status_code=202,
    summary="Send a reply (or a private note with private: true); 202 once queued, persisted by the worker",
)
async def send_message(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    conversation_id: ConversationId,
    data: JSONBody[MessageCreate],
) -> SendAck:
    command = SendMessage(
        kind=MessageKind.AGENT_NOTE if data.private else MessageKind.AGENT_REPLY,
        project_id=project_id,
        conversation_id=conversation_id,
        body=data.body,
        client_msg_id=data.client_msg_id,
    )
    return await sender_of(request.app).send(command, actor=actor)


@patch(BASE, opt=project_role(ProjectRole.AGENT), summary="Change status, assignee or priority")
async def update_conversation(
    request: Request[Any, Any, Any],
    actor: CurrentActor,
    project_id: ProjectId,
    conversation_id: ConversationId,
    data: JSONBody[ConversationUpdate],
) -> ConversationView:
    if not isinstance(data.snoozed_until, UnsetType):
        if data.status not in (UNSET, "snoozed"):
            raise Invalid(
                "snoozed_until goes with status snoozed.", fields={"snoozed_until": "conflicts with status"}
            )
        await services.snooze(actor, project_id, conversation_id, data.snoozed_until)
    elif not isinstance(data.status, UnsetType):
        await services.change_status(actor, project_id, conversation_id, data.status)
    if not isinstance(data.assignee_id, UnsetType):
        await services.assign(actor, project_id, conversation_id, data.assignee_id)
    if not isinstance(data.priority, UnsetType):
        await services.set_priority(actor, project_id, conversation_id, data.priority)
    return await queries.get_conversation(redis_of(request.app), project_id, conversation_id)


@post(BASE + "/read", opt=project_role(ProjectRole.AGENT), status_code=200, summary="Mark read up to seq")
async def mark_read(
    actor: CurrentActor, project_id: ProjectId, conversation_id: ConversationId, data: JSONBody[ReadMark]
) -> ReadAck:
    seq = await services.mark_read(project_id, conversation_id, data.seq, actor=actor)
    return ReadAck(conversation_id=conversation_id, seq=seq)


route_handlers = [send_message, update_conversation, mark_read]
