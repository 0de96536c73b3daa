"""``createadmin``, the console login, and who reaches ``/admin`` and the queue UI."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import httpx

from server.accounts.tables import User
from tests import factories as f

HTML = {"accept": "text/html"}


async def _login(client: httpx.AsyncClient, email: str, password: str, next: str = "/console/") -> Any:
    page = await client.get("/console/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert token, "the login form carries a CSRF token"
    return await client.post(
        "/console/login",
        data={"email": email, "password": password, "next": next, "_csrf_token": token.group(1)},
        follow_redirects=False,
    )


def test_createadmin_reads_the_password_from_stdin(subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "createadmin", "--email", "Boss@Example.com"],
        input="a-good-password\n",
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "created admin boss@example.com"

    again = subprocess.run(
        [sys.executable, "-m", "server", "createadmin", "--email", "boss@example.com"],
        input="another-password\n",
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=False,
    )
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr  # one line, no trace


def test_createadmin_refuses_a_short_password_in_one_line(subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "createadmin", "--email", "a@example.com"],
        input="short\n",
        capture_output=True,
        text=True,
        env=subprocess_env,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "at least 8 characters" in result.stderr


async def test_created_admin_logs_in_and_reaches_admin(
    client: httpx.AsyncClient, subprocess_env: dict[str, str]
) -> None:
    subprocess.run(  # noqa: ASYNC221 (a one-off command before the test's requests)
        [sys.executable, "-m", "server", "createadmin", "--email", "root@example.com"],
        input="a-good-password\n",
        env=subprocess_env,
        check=True,
        capture_output=True,
        text=True,
    )
    response = await _login(client, "ROOT@example.com", "a-good-password", next="/admin/")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/"
    cookie_header = " ".join(response.headers.get_list("set-cookie"))
    assert (
        "parley_session=" in cookie_header and "HttpOnly" in cookie_header and "SameSite=lax" in cookie_header
    )

    admin = await client.get("/admin/", headers=HTML)
    assert admin.status_code == 200
    assert "<html" in admin.text.lower()
    # piccolo-admin's own API accepts the session the console login opened: no second login.
    tables = await client.get("/admin/api/tables/")
    assert tables.status_code == 200, tables.text
    assert "parley_user" in tables.text
    queues = await client.get("/queues/api/queues")
    assert queues.status_code == 200
    assert "live-chat-events-queue" in queues.text


async def test_anonymous_is_sent_to_login_or_refused(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin/", headers=HTML, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/login?next=/admin/")
    api = await client.get("/admin/api/tables/")
    assert api.status_code == 401
    assert api.json()["code"] == "unauthorized"
    assert (await client.get("/queues/api/queues")).status_code == 401


async def test_a_user_who_is_not_admin_is_forbidden(client: httpx.AsyncClient) -> None:
    await f.make_user(email="agent@example.com", password="agent-password")
    assert (await _login(client, "agent@example.com", "agent-password")).status_code == 303
    assert (await client.get("/console/")).status_code == 200
    response = await client.get("/admin/", headers=HTML, follow_redirects=False)
    assert response.status_code == 403
    assert (await client.get("/queues/api/queues")).status_code == 403


async def test_wrong_password_and_inactive_user_are_refused_alike(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com", password="right-password")
    await f.make_user(email="gone@example.com", password="right-password", active=False)
    wrong = await _login(client, "ann@example.com", "wrong-password")
    inactive = await _login(client, "gone@example.com", "right-password")
    unknown = await _login(client, "nobody@example.com", "right-password")
    for response in (wrong, inactive, unknown):
        assert response.status_code == 401
        assert "Wrong e-mail or password." in response.text
        assert "parley_session" not in response.headers.get("set-cookie", "")


async def test_login_without_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com", password="right-password")
    response = await client.post(
        "/console/login", data={"email": "ann@example.com", "password": "right-password"}
    )
    assert response.status_code == 403


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await f.make_user(email="adm@example.com", password="admin-password", role=User.GlobalRole.ADMIN)
    await _login(client, "adm@example.com", "admin-password")
    assert (await client.get("/admin/", headers=HTML)).status_code == 200
    home = await client.get("/console/")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', home.text)
    assert token
    cookies = dict(client.cookies.items())
    await client.post("/console/logout", data={"_csrf_token": token.group(1)}, follow_redirects=False)
    assert (await client.get("/admin/api/tables/")).status_code == 401
    # The server refuses the old cookies sent again, not only the client that dropped them.
    client.cookies.clear()
    replay = "; ".join(f"{name}={cookies[name]}" for name in ("parley_session", "id"))
    assert (await client.get("/admin/api/tables/", headers={"cookie": replay})).status_code == 401
    page = await client.get("/admin/", headers={**HTML, "cookie": replay}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/console/login")


async def test_login_never_redirects_off_site(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com", password="right-password")
    response = await _login(client, "ann@example.com", "right-password", next="//evil.example/x")
    assert response.headers["location"] == "/console/"


async def test_invited_user_sets_a_password_in_the_console(
    client: httpx.AsyncClient, redis: Any, settings: Any
) -> None:
    from server.queue import make_queue
    from server.tenancy.access import ProjectRole
    from server.tenancy.invitations import invite
    from tests.mail_helpers import last_mail_to, run_mail_jobs, token_in

    project = await f.make_project()
    queue = make_queue(settings.queue_redis)
    await invite(queue, project.id, "invitee@example.com", ProjectRole.AGENT, invited_by=None)
    await queue.disconnect()
    await run_mail_jobs(settings)
    token = token_in((await last_mail_to(redis, "invitee@example.com")).text)
    page = await client.get(f"/console/set-password?token={token}")
    assert page.status_code == 200
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert csrf
    form = {"token": token, "password": "brand new pw", "_csrf_token": csrf.group(1)}
    mismatch = await client.post("/console/set-password", data={**form, "password_again": "other"})
    assert mismatch.status_code == 400 and "differ" in mismatch.text
    done = await client.post(
        "/console/set-password", data={**form, "password_again": "brand new pw"}, follow_redirects=False
    )
    assert done.status_code == 303
    assert (await _login(client, "invitee@example.com", "brand new pw")).status_code == 303
    reused = await client.post("/console/set-password", data={**form, "password_again": "brand new pw"})
    assert reused.status_code == 400 and "This link is unknown, used" in reused.text


async def test_console_login_is_rate_limited_like_the_api(client: httpx.AsyncClient) -> None:
    await f.make_user(email="cat@example.com", password="cat's password")
    for _ in range(10):
        assert (await _login(client, "cat@example.com", "wrong")).status_code == 401
    limited = await _login(client, "cat@example.com", "cat's password")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many attempts" in limited.text
