"""The ``/api/v1`` router: every route behind the one access guard, with ``actor`` injectable."""

from __future__ import annotations

from litestar import Router
from litestar.di import Provide

from server.api.access import access_guard, provide_actor
from server.api.errors import document_errors
from server.api.v1 import (
    apikeys,
    auth,
    canned,
    conversation_actions,
    conversations,
    invitations,
    members,
    projects,
    realtime,
    screenshots,
    users,
    visitors,
)

v1_router = Router(
    path="/api/v1",
    route_handlers=document_errors(
        [
            *auth.route_handlers,
            *users.route_handlers,
            *projects.route_handlers,
            *members.route_handlers,
            *invitations.route_handlers,
            *apikeys.route_handlers,
            *realtime.route_handlers,
            *visitors.route_handlers,
            *conversations.route_handlers,
            *conversation_actions.route_handlers,
            *canned.route_handlers,
            *screenshots.route_handlers,
        ]
    ),
    guards=[access_guard],
    dependencies={"actor": Provide(provide_actor, sync_to_thread=False)},
)
