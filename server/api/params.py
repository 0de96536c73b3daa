"""Path and query parameter types shared by the API's routes (validated before any handler runs)."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.params import PathParameter, QueryParameter

from server.chat.queries import MAX_PAGE
from server.chat.views import Status

_MAX_ID = 2**31 - 1

ProjectId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
UserId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
InvitationId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
KeyId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
ReplyId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
ConversationId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]
VisitorId: TypeAlias = Annotated[int, PathParameter(ge=1, le=_MAX_ID)]

Limit: TypeAlias = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="Page size (1-100).")]
Cursor: TypeAlias = Annotated[
    str | None, QueryParameter(max_length=200, description="next_cursor of the previous page.")
]
Seq: TypeAlias = Annotated[int | None, QueryParameter(ge=0, le=_MAX_ID)]
StatusFilter: TypeAlias = Annotated[Status | None, QueryParameter()]
AssigneeFilter: TypeAlias = Annotated[int | None, QueryParameter(ge=1, le=_MAX_ID)]
UnassignedFilter: TypeAlias = Annotated[bool, QueryParameter(description="Only unassigned ones.")]
VisitorUidFilter: TypeAlias = Annotated[str | None, QueryParameter(max_length=64)]
SearchText: TypeAlias = Annotated[str | None, QueryParameter(max_length=100)]
