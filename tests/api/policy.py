"""The access policy of /api/v1, written down once: who may call each route.

This table is the oracle of ``test_access_matrix.py``. It is written by hand, independently of
the rules the routes declare in ``server/api/v1/*`` (``opt=project_role(...)`` and friends), so
a route declared with the wrong role fails the matrix instead of passing with it.
``docs/api.md``'s "Routes" table is checked against it row by row.

Adding a route: add one line here, one row to ``docs/api.md``'s "Routes" table, and a
``Call`` in ``test_access_matrix.py`` (or, for a route whose callers depend on who owns an
object, a line in ``OWN_TESTS`` there naming the test that covers it).
"""

from __future__ import annotations

import enum


class Level(enum.Enum):
    """The lowest caller a route admits; each level admits every caller above it.

    On a route under ``/projects/{project_id}``, a caller with no role in that project (or a key
    limited to another project) gets 404 whatever the level; elsewhere ``ADMIN`` is 403 for
    everyone but global admins.
    """

    PUBLIC = "public"
    SIGNED_IN = "signed in"
    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"


V1 = "/api/v1"
P = V1 + "/projects/{project_id}"

POLICY: dict[tuple[str, str], Level] = {
    ("POST", V1 + "/auth/login"): Level.PUBLIC,
    ("POST", V1 + "/auth/logout"): Level.PUBLIC,
    ("POST", V1 + "/auth/set-password"): Level.PUBLIC,
    ("POST", V1 + "/auth/password-reset"): Level.PUBLIC,
    ("POST", V1 + "/invitations/preview"): Level.PUBLIC,
    ("POST", V1 + "/invitations/accept"): Level.SIGNED_IN,
    ("GET", V1 + "/auth/session"): Level.SIGNED_IN,
    ("GET", V1 + "/users/me"): Level.SIGNED_IN,
    ("GET", V1 + "/users"): Level.ADMIN,
    ("POST", V1 + "/users"): Level.ADMIN,
    ("POST", V1 + "/users/{user_id}/deactivate"): Level.ADMIN,
    ("GET", V1 + "/projects"): Level.SIGNED_IN,
    ("POST", V1 + "/projects"): Level.ADMIN,
    ("GET", P): Level.AGENT,
    ("PATCH", P): Level.MANAGER,
    ("DELETE", P): Level.ADMIN,
    ("POST", P + "/widget-key/rotate"): Level.MANAGER,
    ("GET", P + "/identity-secret"): Level.MANAGER,
    ("POST", P + "/identity-secret/rotate"): Level.MANAGER,
    ("GET", P + "/members"): Level.AGENT,
    ("PATCH", P + "/members/{user_id}"): Level.MANAGER,
    ("DELETE", P + "/members/{user_id}"): Level.MANAGER,
    ("GET", P + "/invitations"): Level.MANAGER,
    ("POST", P + "/invitations"): Level.MANAGER,
    ("POST", P + "/invitations/{invitation_id}/resend"): Level.MANAGER,
    ("DELETE", P + "/invitations/{invitation_id}"): Level.MANAGER,
    ("GET", P + "/visitors"): Level.AGENT,
    ("GET", P + "/visitors/{visitor_id}"): Level.AGENT,
    ("GET", P + "/visitors/{visitor_id}/profile"): Level.AGENT,
    ("POST", P + "/visitors/{visitor_id}/screenshot"): Level.AGENT,
    ("GET", P + "/screenshots/{screenshot_id}"): Level.AGENT,
    ("GET", P + "/conversations"): Level.AGENT,
    ("GET", P + "/conversations/counts"): Level.AGENT,
    ("GET", P + "/conversations/{conversation_id}"): Level.AGENT,
    ("PATCH", P + "/conversations/{conversation_id}"): Level.AGENT,
    ("GET", P + "/conversations/{conversation_id}/messages"): Level.AGENT,
    ("POST", P + "/conversations/{conversation_id}/messages"): Level.AGENT,
    ("POST", P + "/conversations/{conversation_id}/read"): Level.AGENT,
    ("GET", P + "/canned-replies"): Level.AGENT,
    ("POST", P + "/canned-replies"): Level.MANAGER,
    ("PATCH", P + "/canned-replies/{reply_id}"): Level.MANAGER,
    ("DELETE", P + "/canned-replies/{reply_id}"): Level.MANAGER,
    ("POST", V1 + "/api-keys"): Level.SIGNED_IN,
    ("GET", V1 + "/api-keys"): Level.SIGNED_IN,
    ("DELETE", V1 + "/api-keys/{key_id}"): Level.SIGNED_IN,
    ("POST", V1 + "/realtime/token"): Level.SIGNED_IN,
}

READS_THOUGH_UNSAFE: frozenset[tuple[str, str]] = frozenset({("POST", V1 + "/realtime/token")})
"""Unsafe-method routes that change no data, so a read-only key may call them."""
