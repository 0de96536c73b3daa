"""Flash messages: a line of feedback shown once on the page an action leads to.

They travel in a short-lived cookie signed with the secret key (so nobody can plant a message
such as "your password was changed"), set by the action's redirect (plain forms) or by the
``HX-Location`` answer (htmx), and cleared by the page that shows them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Literal

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response import Redirect

from server.web_state import settings_of

FLASH_COOKIE = "parley_flash"
FLASH_PATH = "/console"
Kind = Literal["success", "error", "info"]


class Flash(msgspec.Struct, frozen=True):
    kind: str
    text: str


def _signature(secret: str, payload: str) -> str:
    return hmac.new(f"flash:{secret}".encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


def _secret(request: Request[Any, Any, Any]) -> str:
    return settings_of(request.app).security.secret_key


def flash_cookie(request: Request[Any, Any, Any], text: str, kind: Kind = "success") -> Cookie:
    payload = base64.urlsafe_b64encode(msgspec.json.encode([Flash(kind=kind, text=text[:300])])).decode()
    value = f"{payload}.{_signature(_secret(request), payload)}"
    secure = settings_of(request.app).security.secure_cookies
    return Cookie(
        key=FLASH_COOKIE,
        value=value,
        path=FLASH_PATH,
        max_age=60,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def spent_flash_cookie() -> Cookie:
    return Cookie(key=FLASH_COOKIE, value="", path=FLASH_PATH, max_age=0, httponly=True, samesite="lax")


def read_flashes(request: Request[Any, Any, Any]) -> tuple[list[Flash], bool]:
    """The flashes this request carries (empty if unsigned or malformed), and whether it had any cookie."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return [], False
    payload, _, signature = raw.partition(".")
    if not hmac.compare_digest(signature, _signature(_secret(request), payload)):
        return [], True
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(payload), type=list[Flash]), True
    except (msgspec.DecodeError, ValueError):
        return [], True


def done(request: Request[Any, Any, Any], to: str, message: str, *, kind: Kind = "success") -> Response[Any]:
    """After an action: show ``to`` with ``message``, by a 303 redirect, or for htmx by HX-Location.

    ``HX-Location`` makes htmx fetch ``to`` into ``#main`` and push it to the history, so the
    address bar, reload and back all show the page the action led to.
    """
    cookie = flash_cookie(request, message, kind)
    if request.headers.get("hx-request") == "true":
        location = json.dumps({"path": to, "target": "#main"})
        return Response(content=b"", status_code=200, headers={"HX-Location": location}, cookies=[cookie])
    return Redirect(to, status_code=303, cookies=[cookie])
