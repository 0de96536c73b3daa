"""Password reset: the same answer for every address, a one-use link by mail, older links die."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from server.mail.delivery import dev_mailbox
from tests import factories as f
from tests.mail_helpers import SMTPSink, run_mail_jobs, text_part, token_in, with_smtp

RESET = "/api/v1/auth/password-reset"


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink()
    sink.start()
    yield sink
    sink.stop()


SET = "/api/v1/auth/set-password"


async def login(client: httpx.AsyncClient, email: str, password: str) -> int:
    return (await client.post("/api/v1/auth/login", json={"email": email, "password": password})).status_code


async def test_the_answer_is_the_same_whether_or_not_the_address_has_an_account(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    await f.make_user(email="ann@example.com")
    known = await client.post(RESET, json={"email": "ann@example.com"})
    unknown = await client.post(RESET, json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert known.headers.keys() == unknown.headers.keys()
    await run_mail_jobs(settings)
    assert [mail.to for mail in await dev_mailbox(redis)] == ["ann@example.com"]


async def test_a_reset_link_works_once_and_kills_every_other_link(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    await f.make_user(email="ben@example.com", password="the old password")
    for _ in range(2):
        assert (await client.post(RESET, json={"email": "BEN@example.com"})).status_code == 202
        await run_mail_jobs(settings)
    first, second = [token_in(mail.text) for mail in reversed(await dev_mailbox(redis))]
    assert first != second
    sessions_before = await client.post(
        "/api/v1/auth/login", json={"email": "ben@example.com", "password": "the old password"}
    )
    cookie = sessions_before.cookies
    used = await client.post(SET, json={"token": second, "password": "the new password"})
    assert used.status_code == 200, used.text
    assert await login(client, "ben@example.com", "the new password") == 200
    assert await login(client, "ben@example.com", "the old password") == 401
    again = await client.post(SET, json={"token": second, "password": "a third password"})
    assert again.status_code == 404 and again.json()["code"] == "link_invalid"
    older = await client.post(SET, json={"token": first, "password": "a third password"})
    assert older.status_code == 404 and older.json()["code"] == "link_invalid"
    # The reset ended the sessions opened with the old password.
    client.cookies.clear()
    stale = await client.get("/api/v1/auth/session", cookies=dict(cookie))
    assert stale.status_code == 401


async def test_resets_are_rate_limited_per_address(client: httpx.AsyncClient) -> None:
    answers = [(await client.post(RESET, json={"email": "cat@example.com"})).status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]


async def test_deactivated_accounts_get_no_link(
    client: httpx.AsyncClient, settings: Any, redis: Redis
) -> None:
    await f.make_user(email="dee@example.com", active=False)
    assert (await client.post(RESET, json={"email": "dee@example.com"})).status_code == 202
    await run_mail_jobs(settings)
    assert await dev_mailbox(redis) == []


async def test_the_mail_goes_over_smtp_and_its_link_works(
    client: httpx.AsyncClient, settings: Any, redis: Redis, smtp: SMTPSink
) -> None:
    await f.make_user(email="eve@example.com", password="the old password")
    assert (await client.post(RESET, json={"email": "eve@example.com"})).status_code == 202
    await run_mail_jobs(with_smtp(settings, smtp.url))
    assert await dev_mailbox(redis) == []
    (message,) = smtp.to("eve@example.com")
    assert message["Subject"] == "Choose a new Parley password"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and "<a href=" in html.get_content()
    token = token_in(text_part(message))
    assert (await client.post(SET, json={"token": token, "password": "the new password"})).status_code == 200
    assert await login(client, "eve@example.com", "the new password") == 200
