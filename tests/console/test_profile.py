"""Profile: name, password change (current password first), sessions and "sign out everywhere else"."""

from __future__ import annotations

import httpx

from server.accounts.tables import User
from tests import factories as f
from tests.console.helpers import csrf_of, field_error, post, sign_in


def _browser(client: httpx.AsyncClient, agent: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=client._transport, base_url=str(client.base_url), headers={"user-agent": agent}
    )


async def test_sign_out_everywhere_else_keeps_only_this_browser(client: httpx.AsyncClient) -> None:
    await f.make_user(email="ann@example.com")
    async with (
        _browser(client, "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0") as laptop,
        _browser(client, "Mozilla/5.0 (iPhone) Version/17 Safari/605") as phone,
    ):
        csrf = await sign_in(laptop, "ann@example.com")
        await sign_in(phone, "ann@example.com")
        page = await laptop.get("/console/profile")
        assert "Firefox on Linux" in page.text and "Safari on iOS" in page.text
        ended = await post(laptop, "/console/profile/sessions/sign-out-others", csrf)
        assert ended.status_code == 303
        assert (await phone.get("/console/", follow_redirects=False)).status_code == 303
        after = await laptop.get("/console/profile")
        assert after.status_code == 200 and "Signed out 1 other session." in after.text
        assert "Safari on iOS" not in after.text


async def test_a_password_change_needs_the_current_one_and_signs_out_the_others(
    client: httpx.AsyncClient,
) -> None:
    await f.make_user(email="ann@example.com")
    async with _browser(client, "laptop") as laptop, _browser(client, "phone") as phone:
        csrf = await sign_in(laptop, "ann@example.com")
        await sign_in(phone, "ann@example.com")
        wrong = await post(
            laptop,
            "/console/profile/password",
            csrf,
            {"current_password": "nope", "password": "new password 1", "password_again": "new password 1"},
        )
        assert wrong.status_code == 422 and field_error(wrong.text, "current-password") == "Wrong password"
        short = await post(
            laptop,
            "/console/profile/password",
            csrf,
            {"current_password": f.DEFAULT_PASSWORD, "password": "short", "password_again": "short"},
        )
        assert short.status_code == 422 and field_error(short.text, "new-password")
        changed = await post(
            laptop,
            "/console/profile/password",
            csrf,
            {
                "current_password": f.DEFAULT_PASSWORD,
                "password": "new password 1",
                "password_again": "new password 1",
            },
        )
        assert changed.status_code == 303
        assert (await phone.get("/console/", follow_redirects=False)).status_code == 303
        page = await laptop.get("/console/profile", follow_redirects=False)
        assert page.status_code == 200 and "Password changed." in page.text
        await sign_in(phone, "ann@example.com", "new password 1")


async def test_the_name_is_saved_and_shown_as_text(client: httpx.AsyncClient) -> None:
    ann = await f.make_user(email="ann@example.com")
    csrf = await sign_in(client, "ann@example.com")
    await post(client, "/console/profile/name", csrf, {"name": "<i>Ann</i>"})
    assert (await User.objects().where(User.id == ann.id).first()).name == "<i>Ann</i>"  # type: ignore[union-attr]
    page = await client.get("/console/profile")
    assert "&lt;i&gt;Ann&lt;/i&gt;" in page.text and "<i>Ann</i>" not in page.text
    assert csrf_of(page.text)
