"""Secrets mailed as links (invitations, password resets): made here, stored only as SHA-256.

A link token says what it is for by its prefix (``inv_`` for an invitation, ``pwr_`` for a
password reset), so one "choose a password" page can take either.
"""

from __future__ import annotations

import hashlib
import secrets

INVITATION_PREFIX = "inv_"
PASSWORD_RESET_PREFIX = "pwr_"  # noqa: S105  (a prefix, not a secret)


def new_link_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def link_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
