"""What the gateway reads from PostgreSQL: conversation owners, agents, projects, origins.

Small, cached where the answer cannot change (a conversation never changes visitor) or may be a
little stale (allowed origins, 30 s).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from server.accounts.tables import User
from server.chat.tables import Conversation
from server.tenancy.origins import AllowedOrigins
from server.tenancy.queries import access_now
from server.tenancy.tables import Project

OWNER_CACHE_SIZE = 100_000
ORIGINS_TTL_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class ConversationOwner:
    project_id: int
    visitor_uid: str


class Store:
    def __init__(self) -> None:
        self._owners: OrderedDict[int, ConversationOwner] = OrderedDict()
        self._origins: dict[int, tuple[float, AllowedOrigins]] = {}

    async def conversation_owner(self, conversation_id: int) -> ConversationOwner | None:
        """The conversation's project and visitor uid, or None if it does not exist."""
        owner = self._owners.get(conversation_id)
        if owner is not None:
            self._owners.move_to_end(conversation_id)
            return owner
        if not -(2**31) <= conversation_id < 2**31:
            return None
        row = (
            await Conversation.select(Conversation.project, Conversation.visitor.uid.as_alias("visitor_uid"))
            .where(Conversation.id == conversation_id)
            .first()
        )
        if row is None:
            return None
        owner = ConversationOwner(project_id=row["project"], visitor_uid=row["visitor_uid"])
        self._owners[conversation_id] = owner
        if len(self._owners) > OWNER_CACHE_SIZE:
            self._owners.popitem(last=False)
        return owner

    async def active_user(self, user_id: int) -> User | None:
        user: User | None = await User.objects().where((User.id == user_id) & (User.active == True)).first()  # noqa: E712
        return user

    async def api_key_usable(self, key_id: int) -> bool:
        """Not revoked, not expired, its owner active (a token made with a key lives no longer)."""
        return key_id in (await access_now((), (key_id,), ())).keys

    async def all_project_ids(self) -> frozenset[int]:
        rows = await Project.select(Project.id)
        return frozenset(row["id"] for row in rows)

    async def project_exists(self, project_id: int) -> bool:
        exists: bool = await Project.exists().where(Project.id == project_id)
        return exists

    async def allowed_origins(self, project_id: int) -> AllowedOrigins:
        now = time.monotonic()
        cached = self._origins.get(project_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await Project.select(Project.allowed_origins).where(Project.id == project_id).first()
        origins = AllowedOrigins(row["allowed_origins"] or () if row else ())
        self._origins[project_id] = (now + ORIGINS_TTL_SECONDS, origins)
        return origins
