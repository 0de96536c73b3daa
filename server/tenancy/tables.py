"""Tenancy tables. ``Project`` is the root aggregate: every tenant row cascades from it.

``ApiKey`` lives here rather than in accounts because it grants access to projects and so
references ``Project``; accounts stays free of tenancy imports (no circular migrations).
"""

from __future__ import annotations

import enum
import secrets

from piccolo.columns import JSONB, Array, Boolean, ForeignKey, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.constraints import Unique
from piccolo.table import Table

from server.accounts.tables import User


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    return secrets.token_urlsafe(32)


class Project(Table, tablename="project"):
    """A business using Parley: its widget, its agents and all its conversations."""

    id = Serial(primary_key=True)
    name = Varchar(length=200)
    public_key = Varchar(
        length=64,
        unique=True,
        default=new_public_key,
        help_text="Public widget key, put in the site's script tag. Rotatable.",
    )
    allowed_origins = Array(
        base_column=Varchar(length=255),
        default=list,
        help_text="Origins allowed to open the widget (scheme://host[:port]). Empty allows none.",
    )
    widget_color = Varchar(length=16, default="#2563eb")
    greeting_text = Text(default="Hi! How can we help?")
    offline_text = Text(default="We are away right now. Leave a message and we will get back to you.")

    class LauncherPosition(enum.StrEnum):
        RIGHT = "right"
        LEFT = "left"

    launcher_position = Varchar(
        length=5,
        choices=LauncherPosition,
        default=LauncherPosition.RIGHT,
        help_text="Bottom corner of the page where the widget's launcher sits.",
    )
    prechat_fields = Array(
        base_column=Varchar(length=10),
        default=list,
        help_text='What the widget asks before the first message: "name", "email" (empty: nothing).',
    )
    identity_secret = Varchar(
        length=64,
        default=new_identity_secret,
        secret=True,
        help_text="Signs identified visitors (HMAC-SHA256 or JWT HS256).",
    )
    enforce_identity = Boolean(default=False, help_text="Reject identity claims that are not signed.")
    dom_snapshots = Boolean(
        default=False,
        help_text="Screenshots may be drawn from a sanitised copy of the visitor's page sent by the "
        "widget (shows signed-in pages; the visitor is told each time). Off by default.",
    )
    created_at = Timestamptz(default=TimestamptzNow())


class ProjectMember(Table, tablename="project_member"):
    """A user's membership of a project, with the role they hold there."""

    id = Serial(primary_key=True)

    class ProjectRole(enum.StrEnum):
        MANAGER = "manager"
        AGENT = "agent"

    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    user = ForeignKey(User, on_delete=OnDelete.cascade, null=False)
    role = Varchar(length=10, choices=ProjectRole, default=ProjectRole.AGENT)
    created_at = Timestamptz(default=TimestamptzNow())

    unique_project_user = Unique([project, user])


class Invitation(Table, tablename="invitation"):
    """An offer to join a project, made by a manager to an e-mail address; the invitee accepts it.

    Only the SHA-256 of the secret token is stored; the token itself goes to the invitee's
    mailbox and nowhere else (``server/tenancy/invitations.py``). Pending while neither
    accepted nor revoked and not past ``expires_at``.
    """

    id = Serial(primary_key=True)

    class ProjectRole(enum.StrEnum):
        MANAGER = "manager"
        AGENT = "agent"

    project = ForeignKey(Project, on_delete=OnDelete.cascade, null=False)
    email = Varchar(length=254, help_text="The invited address, lower-cased.")
    name = Varchar(
        length=100,
        default="",
        help_text="The invitee's name as the manager typed it (optional): the new account's name.",
    )
    role = Varchar(length=10, choices=ProjectRole, default=ProjectRole.AGENT, help_text="Role once accepted.")
    invited_by = ForeignKey(
        User, on_delete=OnDelete.set_null, null=True, help_text="The manager (or admin) who invited."
    )
    token_hash = Varchar(length=64, unique=True, help_text="SHA-256 (hex) of the mailed secret.")
    expires_at = Timestamptz(help_text="After this the link no longer works; a resend issues a new one.")
    accepted_at = Timestamptz(null=True, default=None)
    accepted_by = ForeignKey(
        User, on_delete=OnDelete.set_null, null=True, help_text="The account that accepted."
    )
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class ApiKey(Table, tablename="api_key"):
    """A bearer secret for the REST API and the agent socket. Only its hash is stored."""

    id = Serial(primary_key=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade, null=False, help_text="Owner; the key acts as them.")
    project = ForeignKey(
        Project,
        on_delete=OnDelete.cascade,
        null=True,
        help_text="When set, the key only reaches this project.",
    )
    name = Varchar(length=100, help_text="What the key is for, chosen by its owner.")
    prefix = Varchar(length=16, index=True, help_text="Public start of the key, to tell keys apart.")
    secret_hash = Varchar(length=64, unique=True, help_text="SHA-256 of the secret (hex).")
    scopes = JSONB(default=["read", "write"], help_text='Granted scopes: "read", "write".')
    expires_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
