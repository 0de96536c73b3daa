"""API keys: created by a user, shown once, stored as a SHA-256 hash, optionally limited to one
project and to reading, optionally expiring. ``Authorization: Bearer <key>`` acts as the owner."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.database import fetch
from server.errors import ErrorCode, Invalid, NotFound
from server.tenancy import access
from server.tenancy.access import Actor, GlobalRole, ProjectRole
from server.tenancy.actor_cache import Loaded, forget_cached_actors
from server.tenancy.tables import ApiKey

KEY_PREFIX = "prly_"
READ_SCOPES = ["read"]
WRITE_SCOPES = ["read", "write"]
# last_used_at is written at most this often per key, so busy keys cost no write per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_KEYS_PER_USER = 50


@dataclass(frozen=True, slots=True)
class CreatedKey:
    key: ApiKey
    secret: str
    """The only time the secret exists outside the caller's hands."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    actor: Actor, *, name: str, project_id: int | None, read_only: bool, expires_at: datetime | None
) -> CreatedKey:
    name = name.strip()
    if not name:
        raise Invalid("A key needs a name.", fields={"name": "must not be empty"})
    if project_id is not None and access.role_in(actor, project_id) is None:
        raise NotFound("No such project.")
    if actor.key_project_id is not None and project_id != actor.key_project_id:
        # A key limited to a project can only mint keys limited to that same project.
        raise Invalid(
            "This key can only create keys for its own project.", fields={"project_id": "not allowed"}
        )
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise Invalid("The expiry must be in the future.", fields={"expires_at": "must be in the future"})
    active_keys = await ApiKey.count().where(ApiKey.user == actor.user_id, ApiKey.revoked_at.is_null())
    if active_keys >= MAX_KEYS_PER_USER:
        raise Invalid(
            f"A user may hold at most {MAX_KEYS_PER_USER} active keys.", code=ErrorCode.TOO_MANY_KEYS
        )
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        user=actor.user_id,
        project=project_id,
        name=name,
        prefix=f"{KEY_PREFIX}{prefix}",
        secret_hash=hash_secret(secret),
        scopes=READ_SCOPES if read_only or actor.read_only else WRITE_SCOPES,
        expires_at=expires_at,
    )
    await key.save()
    return CreatedKey(key=key, secret=secret)


async def list_api_keys(actor: Actor, *, limit: int | None = None, offset: int = 0) -> list[ApiKey]:
    """The actor's own keys; a global admin sees every key (``limit`` from ``offset``: all by default)."""
    query = ApiKey.objects().order_by(ApiKey.id)
    if limit is not None:
        query = query.limit(limit).offset(offset)
    if not access.is_admin(actor):
        query = query.where(ApiKey.user == actor.user_id)
    keys: list[ApiKey] = await query.output(load_json=True)
    return keys


async def revoke_api_key(actor: Actor, key_id: int) -> ApiKey:
    key: ApiKey | None = await ApiKey.objects().where(ApiKey.id == key_id).first()
    if key is None or (key.user != actor.user_id and not access.is_admin(actor)):
        raise NotFound("No such API key.")
    await ApiKey.update({ApiKey.revoked_at: datetime.now(UTC)}).where(
        (ApiKey.id == key_id) & ApiKey.revoked_at.is_null()
    )
    forget_cached_actors()
    revoked: ApiKey = await ApiKey.objects().where(ApiKey.id == key_id).first().output(load_json=True)
    return revoked


def is_read_only(scopes: object) -> bool:
    return not isinstance(scopes, list) or "write" not in scopes


_AUTHENTICATE = """
SELECT k.id, k.project, k.scopes, k.expires_at, k.revoked_at, k.last_used_at,
       u.id AS user_id, u.global_role, u.active,
       COALESCE(
         (SELECT json_object_agg(m.project, m.role) FROM project_member m WHERE m."user" = u.id),
         json_build_object()
       ) AS memberships
FROM api_key k JOIN parley_user u ON u.id = k."user"
WHERE k.secret_hash = $1
"""


async def resolve_api_key(secret: str) -> Loaded | None:
    """The actor a bearer secret stands for (and the key's expiry), or None when unknown, revoked,
    expired or its owner is inactive.

    One round trip (key, owner and memberships together): it runs whenever the caller is not in
    the web process's actor cache.
    """
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    rows = await fetch(_AUTHENTICATE, hash_secret(secret))
    row = rows[0] if rows else None
    now = datetime.now(UTC)
    if row is None or not row["active"] or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and row["expires_at"] <= now:
        return None
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
        await ApiKey.update({ApiKey.last_used_at: now}).where(ApiKey.id == row["id"])
    memberships: dict[str, str] = json.loads(row["memberships"])
    actor = Actor(
        user_id=row["user_id"],
        global_role=GlobalRole(row["global_role"]),
        memberships={int(project): ProjectRole(role) for project, role in memberships.items()},
        key_project_id=row["project"],
        read_only=is_read_only(json.loads(row["scopes"])),
        api_key_id=row["id"],
    )
    return actor, row["expires_at"]


async def authenticate_api_key(secret: str) -> Actor | None:
    """:func:`resolve_api_key` without the expiry."""
    resolved = await resolve_api_key(secret)
    return resolved[0] if resolved is not None else None
