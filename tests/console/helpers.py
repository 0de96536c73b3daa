"""Driving the console over HTTP as a browser would: sign in, read the CSRF token, post forms."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from tests import factories as f

HTMX = {"HX-Request": "true"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', html
    )
    assert match, "the page carries a CSRF token"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = f.DEFAULT_PASSWORD) -> str:
    """Sign in through the console's form; returns the CSRF token for later posts."""
    page = await client.get("/console/login")
    response = await client.post(
        "/console/login",
        data={"email": email, "password": password, "next": "/console/", "_csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of((await client.get("/console/")).text)


async def post(
    client: httpx.AsyncClient, path: str, csrf: str, data: dict[str, Any] | None = None, **kwargs: Any
) -> httpx.Response:
    """A plain form post (no htmx), the CSRF token in the form like the browser sends it."""
    return await client.post(
        path, data={**(data or {}), "_csrf_token": csrf}, follow_redirects=False, **kwargs
    )


def field_error(html: str, field: str) -> str | None:
    """The inline error shown next to ``field`` (by its ``<field>-error`` id), if any."""
    match = re.search(rf'id="{field}-error"[^>]*>([^<]*)<', html)
    return unescape(match.group(1).strip()) if match else None
