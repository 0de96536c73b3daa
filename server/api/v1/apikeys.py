"""API keys: create (secret shown once), list, revoke. Own keys; admins see all."""

from __future__ import annotations

from litestar import delete, get, post
from litestar.params import JSONBody

from server.api.access import CurrentActor, signed_in
from server.api.params import KeyId
from server.tenancy import apikeys
from server.tenancy.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyView
from server.tenancy.tables import ApiKey


def api_key_view(key: ApiKey) -> ApiKeyView:
    return ApiKeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_id=key.user,
        project_id=key.project,
        read_only=apikeys.is_read_only(key.scopes),
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        created_at=key.created_at,
    )


@post("/api-keys", opt=signed_in(), summary="Create an API key; the secret is in this response only")
async def create_api_key(actor: CurrentActor, data: JSONBody[ApiKeyCreate]) -> ApiKeyCreated:
    created = await apikeys.create_api_key(
        actor,
        name=data.name,
        project_id=data.project_id,
        read_only=data.read_only,
        expires_at=data.expires_at,
    )
    return ApiKeyCreated(key=api_key_view(created.key), secret=created.secret)


@get("/api-keys", opt=signed_in(), summary="The caller's API keys (admins: all)")
async def list_api_keys(actor: CurrentActor) -> list[ApiKeyView]:
    return [api_key_view(key) for key in await apikeys.list_api_keys(actor)]


@delete("/api-keys/{key_id:int}", opt=signed_in(), status_code=200, summary="Revoke an API key")
async def revoke_api_key(actor: CurrentActor, key_id: KeyId) -> ApiKeyView:
    return api_key_view(await apikeys.revoke_api_key(actor, key_id))


route_handlers = [create_api_key, list_api_keys, revoke_api_key]
