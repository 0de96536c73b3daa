"""The end of a console session, proven on the server: the old cookie is replayed by hand.

An HTTP client drops a cookie that the server expired (``Max-Age=0``), so "after logout the
client is signed out" proves nothing about the server. Each test here keeps the cookie's value,
ends the session one way, and sends the value again in a ``Cookie`` header of its own.

A password reset by e-mail refusing the old cookie is tested in ``test_password_reset.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.accounts.sessions import SESSION_COOKIE, SESSION_TTL_SECONDS, _token_hash
from server.accounts.tables import User
from server.redis_client import Keys
from tests import factories as f
from tests.api.world import build_world
from tests.conftest import serve_in_process

PASSWORD = "the old password"


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> tuple[str, str]:
    """Sign in over the API: (cookie value, CSRF token). The client's own jar is emptied, so
    every later request carries exactly the cookie the test gives it."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.cookies[SESSION_COOKIE]
    client.cookies.clear()
    return token, response.json()["csrf_token"]


async def _replay(client: httpx.AsyncClient, token: str) -> int:
    """The status of ``GET /users/me`` with this cookie value, sent by hand."""
    response = await client.get("/api/v1/users/me", headers={"cookie": f"{SESSION_COOKIE}={token}"})
    client.cookies.clear()
    return response.status_code


async def _console_replay(client: httpx.AsyncClient, token: str) -> str:
    """Where the console's home sends this cookie: '' means it is let in."""
    response = await client.get(
        "/console/", headers={"cookie": f"{SESSION_COOKIE}={token}"}, follow_redirects=False
    )
    client.cookies.clear()
    return response.headers.get("location", "") if response.is_redirect else ""


async def test_api_logout_refuses_the_old_cookie(client: httpx.AsyncClient, redis: Redis) -> None:
    await f.make_user(email="ana@example.com", password=PASSWORD)
    token, csrf = await _login(client, "ana@example.com")
    assert await _replay(client, token) == 200  # the replay itself works while the session lives
    cookie = {"cookie": f"{SESSION_COOKIE}={token}"}
    forged = await client.post("/api/v1/auth/logout", headers=cookie)  # a cross-site form, say
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert await _replay(client, token) == 200
    logout = await client.post("/api/v1/auth/logout", headers={**cookie, "x-csrf-token": csrf})
    assert logout.status_code == 204
    assert await _replay(client, token) == 401
    assert (await _console_replay(client, token)).startswith("/console/login")
    assert not await redis.exists(Keys.session(_token_hash(token)))


async def test_console_logout_refuses_the_old_cookie(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ana@example.com", password=PASSWORD)
    token, _ = await _login(client, "ana@example.com")
    cookie = {"cookie": f"{SESSION_COOKIE}={token}"}
    home = await client.get("/console/", headers=cookie)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', home.text)
    assert csrf, "the console page carries a logout form"
    form_cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    client.cookies.clear()
    logout = await client.post(
        "/console/logout",
        data={"_csrf_token": csrf.group(1)},
        headers={"cookie": f"{cookie['cookie']}; {form_cookie}"},
        follow_redirects=False,
    )
    assert logout.status_code == 303, logout.text
    assert await _replay(client, token) == 401
    assert (await _console_replay(client, token)).startswith("/console/login")


async def test_deactivation_refuses_every_old_cookie(client: httpx.AsyncClient) -> None:
    world = await build_world()
    agent = world.users["agent"]
    phone, _ = await _login(client, agent.email, f.DEFAULT_PASSWORD)
    laptop, _ = await _login(client, agent.email, f.DEFAULT_PASSWORD)
    assert await _replay(client, phone) == await _replay(client, laptop) == 200
    response = await client.post(f"/api/v1/users/{agent.id}/deactivate", headers=world.headers("admin"))
    assert response.status_code == 200
    assert await _replay(client, phone) == await _replay(client, laptop) == 401
    assert (await _console_replay(client, laptop)).startswith("/console/login")


async def test_deactivation_refuses_the_cookie_even_if_the_session_survived(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    """Belt and braces: a session left in Redis (say, written by a process that missed the
    deactivation) still does not let an inactive user in."""
    user = await f.make_user(email="ana@example.com", password=PASSWORD)
    token, _ = await _login(client, "ana@example.com")
    await User.update({User.active: False}).where(User.id == user.id)  # behind the API's back
    from server.tenancy.actor_cache import forget_cached_actors

    forget_cached_actors()
    assert await redis.exists(Keys.session(_token_hash(token)))
    assert await _replay(client, token) == 401


async def test_sign_out_everywhere_else_refuses_the_other_cookies_and_keeps_this_one(
    client: httpx.AsyncClient, redis: Redis
) -> None:
    await f.make_user(email="ana@example.com", password=PASSWORD)
    await f.make_user(email="bob@example.com", password=PASSWORD)
    laptop, _ = await _login(client, "ana@example.com")
    phone, _ = await _login(client, "ana@example.com")
    tablet, _ = await _login(client, "ana@example.com")
    someone_else, _ = await _login(client, "bob@example.com")
    cookie = {"cookie": f"{SESSION_COOKIE}={laptop}"}
    page = await client.get("/console/profile", headers=cookie)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and csrf, "the profile page carries the form"
    form_cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    client.cookies.clear()
    ended = await client.post(
        "/console/profile/sessions/sign-out-others",
        data={"_csrf_token": csrf.group(1)},
        headers={"cookie": f"{cookie['cookie']}; {form_cookie}"},
        follow_redirects=False,
    )
    assert ended.status_code == 303, ended.text
    client.cookies.clear()
    for token in (phone, tablet):
        assert await _replay(client, token) == 401
        assert (await _console_replay(client, token)).startswith("/console/login")
        assert not await redis.exists(Keys.session(_token_hash(token)))
    assert await _replay(client, laptop) == 200  # this browser stays signed in
    assert await _console_replay(client, laptop) == ""
    assert await _replay(client, someone_else) == 200  # and nobody else's sessions end


async def test_password_change_refuses_the_old_cookie(
    client: httpx.AsyncClient, subprocess_env: dict[str, str]
) -> None:
    """``createadmin --reset`` is today's one way to change an existing user's password."""
    await f.make_user(email="ana@example.com", password=PASSWORD)
    token, _ = await _login(client, "ana@example.com")
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "server", "createadmin", "--email", "ana@example.com", "--reset"],
        input="a brand new password\n",
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert await _replay(client, token) == 401
    fresh, _ = await _login(client, "ana@example.com", "a brand new password")
    assert await _replay(client, fresh) == 200


async def test_session_expires_on_the_server(client: httpx.AsyncClient, redis: Redis) -> None:
    await f.make_user(email="ana@example.com", password=PASSWORD)
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ana@example.com", "password": PASSWORD}
    )
    assert f"Max-Age={SESSION_TTL_SECONDS}" in response.headers["set-cookie"]
    token = response.cookies[SESSION_COOKIE]
    client.cookies.clear()
    key = Keys.session(_token_hash(token))
    assert 0 < await redis.ttl(key) <= SESSION_TTL_SECONDS
    assert 0 < await redis.ttl(Keys.user_sessions((await User.objects().first()).id)) <= SESSION_TTL_SECONDS  # type: ignore[union-attr]
    assert await _replay(client, token) == 200
    # Let Redis expire the session as it would after eight hours, and wait until it has.
    await redis.pexpire(key, 1)
    while await redis.exists(key):  # noqa: ASYNC110 (Redis's clock: no event to wait on)
        await asyncio.sleep(0.005)
    assert await _replay(client, token) == 401


@pytest.fixture
async def secure_client(settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    from server.web import create_app

    secure = dataclasses.replace(
        settings, security=dataclasses.replace(settings.security, secure_cookies=True)
    )
    async with serve_in_process(create_app(secure)) as http:
        yield http


def _cookie_attributes(response: httpx.Response) -> dict[str, str]:
    """Cookie name -> its Set-Cookie line."""
    return {line.split("=", 1)[0]: line for line in response.headers.get_list("set-cookie")}


async def test_secure_cookies_setting_marks_every_session_cookie(
    secure_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await f.make_user(email="root@example.com", password=PASSWORD, role=User.GlobalRole.ADMIN)
    for http, secure in ((secure_client, True), (client, False)):
        api = await http.post("/api/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD})
        assert api.status_code == 200
        page = await http.get("/console/login")
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
        assert csrf
        # Sent by hand: httpx keeps a Secure cookie off plain http, as a browser would.
        form_cookies = "; ".join(line.split(";", 1)[0] for line in page.headers.get_list("set-cookie"))
        http.cookies.clear()
        console = await http.post(
            "/console/login",
            data={
                "email": "root@example.com",
                "password": PASSWORD,
                "next": "/console/",
                "_csrf_token": csrf.group(1),
            },
            headers={"cookie": form_cookies},
            follow_redirects=False,
        )
        assert console.status_code == 303
        cookies = {
            "api " + SESSION_COOKIE: _cookie_attributes(api)[SESSION_COOKIE],
            **{f"console {name}": line for name, line in _cookie_attributes(console).items()},
            **{f"form {name}": line for name, line in _cookie_attributes(page).items()},
        }
        assert {"api parley_session", "console parley_session", "console id"} <= set(cookies)
        for name, line in cookies.items():
            assert ("; Secure" in line or "; secure" in line) is secure, (name, line)
            if not name.startswith("form"):  # the CSRF cookie is read by the page's script
                assert "httponly" in line.lower(), (name, line)
