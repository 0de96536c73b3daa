"""Tenancy DTOs: projects, members, API keys (msgspec)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

ProjectName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Origin = Annotated[str, msgspec.Meta(min_length=1, max_length=255, examples=["https://shop.example"])]
Colour = Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$", examples=["#2563eb"])]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Role = Literal["manager", "agent"]
LauncherPosition = Literal["right", "left"]
PrechatField = Literal["name", "email"]


class ProjectCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: ProjectName
    allowed_origins: Annotated[list[Origin], msgspec.Meta(max_length=50)] = []


class ProjectUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields present change."""

    name: ProjectName | UnsetType = UNSET
    allowed_origins: Annotated[list[Origin], msgspec.Meta(max_length=50)] | UnsetType = UNSET
    widget_color: Colour | UnsetType = UNSET
    greeting_text: Text | UnsetType = UNSET
    offline_text: Text | UnsetType = UNSET
    enforce_identity: bool | UnsetType = UNSET
    launcher_position: LauncherPosition | UnsetType = UNSET
    """Bottom corner of the page for the widget's launcher."""
    prechat_fields: Annotated[list[PrechatField], msgspec.Meta(max_length=2)] | UnsetType = UNSET
    """Asked by the widget before the first message (empty: nothing asked)."""
    dom_snapshots: bool | UnsetType = UNSET
    """Screenshots from a sanitised copy of the visitor's page, sent by the widget on an agent's
    request (docs/screenshots.md: the privacy trade-off). Off by default."""


class ProjectView(msgspec.Struct):
    id: int
    name: str
    public_key: str
    allowed_origins: list[str]
    widget_color: str
    greeting_text: str
    offline_text: str
    enforce_identity: bool
    created_at: datetime
    launcher_position: LauncherPosition = "right"
    prechat_fields: list[PrechatField] = []
    dom_snapshots: bool = False
    """Screenshots may use the widget's DOM snapshot (docs/screenshots.md)."""
    role: Role | None = None
    """The caller's role in the project (admins: manager)."""


class ProjectSecretsView(msgspec.Struct):
    """Managers only: what a site needs to sign visitor identities."""

    identity_secret: str


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class MemberView(msgspec.Struct):
    user_id: int
    email: str
    name: str
    role: Role
    active: bool
    created_at: datetime


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254, examples=["agent@example.com"])]
    role: Role = "agent"
    name: Annotated[str, msgspec.Meta(max_length=100, examples=["Alice Agent"])] = ""
    """Optional: greets them in the mail and names their new account (they may change it)."""


class InvitationView(msgspec.Struct):
    """A pending invitation as its project's managers see it: never its secret."""

    id: int
    email: str
    name: str
    role: Role
    invited_by: int | None
    """The user who invited (or re-sent it last)."""
    created_at: datetime
    expires_at: datetime
    expired: bool
    """Past ``expires_at``: the link no longer works; re-send to issue a new one."""


class InvitationAccept(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    """The ``token`` query parameter of the link in the invitation mail."""


class InvitationAccepted(msgspec.Struct):
    project_id: int
    role: Role


class InvitationPreviewView(msgspec.Struct):
    project_name: str
    email: str
    name: str
    """The name the manager gave (may be empty)."""
    role: Role
    account_exists: bool
    """True: sign in as ``email`` and accept. False: choose a password with ``POST /auth/set-password``."""


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    project_id: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = None
    read_only: bool = False
    expires_at: datetime | None = None


class ApiKeyView(msgspec.Struct):
    id: int
    name: str
    prefix: str
    user_id: int
    project_id: int | None
    read_only: bool
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(msgspec.Struct):
    key: ApiKeyView
    secret: str
    """Shown once. Store it now: only its hash is kept."""


class RealtimeToken(msgspec.Struct):
    token: str
    expires_at: int
    """Unix time."""
    url: str
    """Socket.IO path on the realtime process; connect with transports: ['websocket']."""
