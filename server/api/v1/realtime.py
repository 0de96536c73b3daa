"""Tokens for the realtime gateway (agents)."""

from __future__ import annotations

from typing import Any

from litestar import Request, post

from server.accounts.tokens import agent_token
from server.api.access import CurrentActor, signed_in
from server.tenancy.schemas import RealtimeToken
from server.web_state import settings_of


@post(
    "/realtime/token",
    opt=signed_in(writes=False),
    status_code=200,
    summary="A short-lived token for the /agent namespace of the socket gateway",
)
async def realtime_token(request: Request[Any, Any, Any], actor: CurrentActor) -> RealtimeToken:
    settings = settings_of(request.app)
    token, claims = agent_token(
        actor.user_id,
        settings.security.secret_key,
        project_id=actor.key_project_id,
        read_only=actor.read_only,
        api_key_id=actor.api_key_id,
    )
    return RealtimeToken(token=token, expires_at=claims.exp, url="/socket.io/")


route_handlers = [realtime_token]
