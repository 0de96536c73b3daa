"""Whole journeys through the console in Chromium, as a manager, an agent and an admin do them,
against a live stack (web, realtime, worker) whose mail goes over SMTP to a real server on
loopback (aiosmtpd): invitations and resets are followed from the received mail.

Every page a journey visits passes axe-core and is photographed light and dark
(``.artifacts/screenshots/journey-*``), as it is at that step.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import socketio
from playwright.async_api import Page, WebSocket

from server.accounts.tables import User
from server.chat.tables import Conversation, Message
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.browser.conftest import LiveStack
from tests.browser.support import assert_accessible, screenshot
from tests.mail_helpers import SMTPSink, text_part

pytestmark = pytest.mark.browser
Role = ProjectMember.ProjectRole
LINK = re.compile(r"https?://\S+?\?token=[A-Za-z0-9_\-]+")
DEADLINE = 30.0


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    sink = SMTPSink()
    sink.start()
    yield sink
    sink.stop()


async def look(page: Page, name: str) -> None:
    """axe-core on the page as it is now, and its screenshot, light then dark."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await assert_accessible(page)
        await screenshot(page, name)
    await page.emulate_media(color_scheme="light")


async def sign_in(page: Page, stack: LiveStack, email: str, password: str = f.DEFAULT_PASSWORD) -> None:
    await page.goto(f"{stack.web_url}/console/login")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console/")


async def until(check: Callable[[], Any], what: str, within: float = DEADLINE) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def mail_to(smtp: SMTPSink, address: str, stack: LiveStack) -> EmailMessage:
    """The first mail to ``address`` that reached the SMTP server (sent by the worker's job)."""
    try:
        messages = await until(lambda: smtp.to(address), f"mail to {address}", within=90)
    except AssertionError as error:
        raise AssertionError(f"{error}; the worker said:\n{stack.log('worker')[-3000:]}") from None
    message: EmailMessage = messages[0]
    return message


def link_in(message: EmailMessage) -> str:
    match = LINK.search(text_part(message))
    assert match, text_part(message)
    return match.group(0)


async def accept_dialogs(page: Page) -> None:
    """Accept the confirmations htmx asks (``hx-confirm``)."""

    async def accept(dialog: Any) -> None:
        await dialog.accept()

    page.on("dialog", accept)


def record_sockets(page: Page) -> tuple[list[WebSocket], list[str]]:
    """The page's websockets and every text frame they received."""
    sockets: list[WebSocket] = []
    frames: list[str] = []

    def opened(ws: WebSocket) -> None:
        sockets.append(ws)
        ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, str) else ""))

    page.on("websocket", opened)
    return sockets, frames


async def test_a_manager_invites_an_agent_who_joins_then_changes_their_role_and_removes_them(
    live_stack_factory: Callable[..., LiveStack], new_page: Callable[..., Awaitable[Page]], smtp: SMTPSink
) -> None:
    stack = live_stack_factory(SMTP_URL=smtp.url)
    await f.make_user(email="admin@example.com", name="Ada Admin", role=User.GlobalRole.ADMIN)
    manager = await new_page()
    await accept_dialogs(manager)
    await sign_in(manager, stack, "admin@example.com")

    # The admin creates the project, with its allowed origins.
    await manager.goto(f"{stack.web_url}/console/admin/projects")
    await look(manager, "journey-admin-projects")
    await manager.get_by_label("Name", exact=True).fill("Acme Shop")
    await manager.get_by_label("Allowed origins").fill("https://shop.example\nhttps://*.acme.example")
    await manager.get_by_role("button", name="Create project").click()
    await manager.wait_for_url("**/settings")
    project = await Project.objects().where(Project.name == "Acme Shop").first()
    assert project is not None and project.allowed_origins == [
        "https://shop.example",
        "https://*.acme.example",
    ]
    admin = await User.objects().where(User.email == "admin@example.com").first()
    assert admin is not None
    await f.make_member(project, admin, Role.MANAGER)
    base = f"{stack.web_url}/console/projects/{project.id}"

    # The manager invites Alice by e-mail, with her name.
    await manager.goto(f"{base}/members")
    await manager.get_by_label("E-mail", exact=True).fill("alice@example.com")
    await manager.get_by_label("Name (optional)").fill("Alice Agent")
    await manager.get_by_label("Role", exact=True).select_option("agent")
    await manager.get_by_role("button", name="Send invitation").click()
    await manager.get_by_text("Invitation sent to alice@example.com.").wait_for()
    await manager.get_by_role("cell", name="alice@example.com Alice Agent").wait_for()  # pending, named
    await look(manager, "journey-members-invited")

    # The mail arrives at the SMTP server; Alice follows its link and chooses a password.
    invitation = await mail_to(smtp, "alice@example.com", stack)
    assert invitation["Subject"] == "You are invited to Acme Shop on Parley"
    assert text_part(invitation).startswith("Hello Alice Agent,")
    agent = await new_page()
    sockets, frames = record_sockets(agent)
    await agent.goto(link_in(invitation))
    await agent.get_by_role("heading", name="Join Acme Shop").wait_for()
    assert await agent.get_by_label("Your name").input_value() == "Alice Agent"
    await look(agent, "journey-set-password")
    await agent.get_by_label("Password", exact=True).fill("alice's password")
    await agent.get_by_label("Again").fill("alice's password")
    await agent.get_by_role("button", name="Save and sign in").click()
    await agent.wait_for_url("**/console/login**")
    await sign_in(agent, stack, "alice@example.com", "alice's password")
    await look(agent, "journey-agent-home")
    alice = await User.objects().where(User.email == "alice@example.com").first()
    assert alice is not None and alice.name == "Alice Agent"

    # She sees the Inbox, live.
    await agent.goto(f"{base}/inbox")
    await agent.locator('#connection[data-state="connected"]').wait_for()
    await look(agent, "journey-agent-inbox")
    assert (await agent.goto(f"{base}/settings")).status == 403  # type: ignore[union-attr]

    # The manager makes her a manager: her next request may open the settings.
    await manager.goto(f"{base}/members")
    await manager.get_by_label("Role of alice@example.com", exact=True).select_option("manager")
    await manager.get_by_role("button", name="Save the role of alice@example.com").click()
    await manager.get_by_text("Alice Agent is now manager.").wait_for()
    await look(manager, "journey-members-role-changed")
    assert (await agent.goto(f"{base}/settings")).status == 200  # type: ignore[union-attr]

    # Alice opens the inbox again; the manager removes her: her socket is ended and her pages go.
    await agent.goto(f"{base}/inbox")
    await agent.locator('#connection[data-state="connected"]').wait_for()
    live_socket = sockets[-1]
    await manager.get_by_role("button", name="Remove alice@example.com").click()
    await manager.get_by_text("Member removed: they lose the project at once.").wait_for()
    await look(manager, "journey-members-removed")
    revoked = await until(
        lambda: [frame for frame in frames if '"access:revoked"' in frame], "access:revoked"
    )
    assert '"code":"member_removed"' in revoked[0].replace(" ", "")
    await until(live_socket.is_closed, "the agent's websocket to close")
    # The inbox says why, instead of a bare "Offline", and it does not come back.
    await agent.locator('#connection[data-state="revoked"]').wait_for()
    notice = agent.get_by_role("alert").filter(has_text="Reload the page")
    await notice.wait_for()
    assert "Offline" not in await agent.locator("#connection").inner_text()
    await look(agent, "journey-agent-inbox-revoked")
    assert sockets[-1] is live_socket  # no new socket was opened
    response = await agent.goto(f"{base}/inbox")
    assert response is not None and response.status == 404
    assert "Acme Shop" not in await agent.content()
    await look(agent, "journey-agent-removed")


async def test_an_api_key_is_shown_once_works_and_is_refused_once_revoked(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    admin = await f.make_user(email="admin@example.com", name="Ada Admin", role=User.GlobalRole.ADMIN)
    project = await f.make_project(name="Acme Shop")
    await f.make_member(project, admin, Role.MANAGER)
    await f.make_conversation(project, await f.make_visitor(project))
    page = await new_page()
    await accept_dialogs(page)
    await sign_in(page, live_stack, "admin@example.com")
    await page.goto(f"{live_stack.web_url}/console/api-keys")
    await look(page, "journey-api-keys-empty")
    await page.get_by_label("Name", exact=True).fill("CRM sync")
    await page.get_by_label("Limited to").select_option(label="Acme Shop")
    await page.get_by_role("button", name="Create key").click()
    await page.get_by_role("heading", name="Copy your new key now").wait_for()
    secret = (await page.locator("#new-key-secret").inner_text()).strip()
    assert secret.startswith("prly_")
    await look(page, "journey-api-key-created")

    conversations = f"{live_stack.web_url}/api/v1/projects/{project.id}/conversations"
    bearer = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient() as http:
        listed = await http.get(conversations, headers=bearer)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 1, listed.text
        socket = socketio.AsyncClient(reconnection=False)
        revocations: list[Any] = []
        socket.on("access:revoked", revocations.append, namespace="/agent")
        await socket.connect(
            live_stack.realtime_url, namespaces=["/agent"], auth={"api_key": secret}, transports=["websocket"]
        )
        try:
            await page.reload()  # shown once: a reload shows the key's prefix only
            await page.get_by_role("button", name="Revoke CRM sync").wait_for()
            assert await page.locator("#new-key-secret").count() == 0 and secret not in await page.content()
            await page.get_by_role("button", name="Revoke CRM sync").click()
            await page.get_by_text("revoked", exact=True).wait_for()
            await look(page, "journey-api-key-revoked")
            refused = await http.get(conversations, headers=bearer)
            assert refused.status_code == 401 and refused.json()["code"] == "invalid_api_key", refused.text
            await until(lambda: revocations and not socket.connected, "the key's socket to be disconnected")
            assert revocations[0]["code"] == "api_key_revoked"
        finally:
            await socket.disconnect()


async def test_a_forgotten_password_is_reset_from_the_mail(
    live_stack_factory: Callable[..., LiveStack], new_page: Callable[..., Awaitable[Page]], smtp: SMTPSink
) -> None:
    stack = live_stack_factory(SMTP_URL=smtp.url)
    await f.make_user(email="alice@example.com", name="Alice Agent")
    page = await new_page()
    await page.goto(f"{stack.web_url}/console/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await page.get_by_role("heading", name="Reset your password").wait_for()
    await look(page, "journey-forgot-password")
    await page.get_by_label("E-mail").fill("alice@example.com")
    await page.get_by_role("button", name="Send the link").click()
    await page.get_by_text("If alice@example.com has an account").wait_for()
    await look(page, "journey-reset-sent")

    reset = await mail_to(smtp, "alice@example.com", stack)
    link = link_in(reset)
    await page.goto(link)
    await page.get_by_role("heading", name="Choose your password").wait_for()
    await look(page, "journey-reset-choose")
    await page.get_by_label("Password", exact=True).fill("a brand new password")
    await page.get_by_label("Again").fill("a brand new password")
    await page.get_by_role("button", name="Save and sign in").click()
    await page.wait_for_url("**/console/login**")
    await page.get_by_label("E-mail").fill("alice@example.com")
    await page.get_by_label("Password").fill(f.DEFAULT_PASSWORD)  # the old one
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("alert").first.wait_for()
    await look(page, "journey-reset-old-password-refused")
    await sign_in(page, stack, "alice@example.com", "a brand new password")

    await page.goto(link)  # one use only
    await page.get_by_label("Password", exact=True).fill("yet another password")
    await page.get_by_label("Again").fill("yet another password")
    await page.get_by_role("button", name="Save and sign in").click()
    await page.get_by_role("alert").first.wait_for()
    assert "This link is unknown, used or expired." in await page.get_by_role("alert").first.inner_text()


async def test_sign_out_everywhere_else_ends_the_other_browsers(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    await f.make_user(email="alice@example.com", name="Alice Agent")
    laptop, phone = await new_page(), await new_page(viewport={"width": 390, "height": 844})
    await sign_in(laptop, live_stack, "alice@example.com")
    await sign_in(phone, live_stack, "alice@example.com")
    await laptop.goto(f"{live_stack.web_url}/console/profile")
    assert await laptop.locator(".cell-sub", has_text="Since").count() == 2  # both browsers
    await look(laptop, "journey-profile-two-sessions")
    await laptop.get_by_role("button", name="Sign out everywhere else").click()
    await laptop.get_by_text("Signed out 1 other session.").wait_for()
    await look(laptop, "journey-profile-signed-out-others")
    await phone.goto(f"{live_stack.web_url}/console/profile")
    await phone.wait_for_url("**/console/login**")  # the phone's session is gone
    await look(phone, "journey-phone-signed-out")
    response = await laptop.goto(f"{live_stack.web_url}/console/profile")
    assert response is not None and response.status == 200 and laptop.url.endswith("/console/profile")
    assert await laptop.locator(".cell-sub", has_text="Since").count() == 1


async def test_the_system_page_replays_a_dead_letter_through_the_worker(
    live_stack: LiveStack, new_page: Callable[..., Awaitable[Page]]
) -> None:
    """A reply accepted for a conversation that was deleted before the worker stored it becomes a
    dead letter (its drain job fails); once the conversation is back (restored), the admin replays
    it from the System page and the worker stores it."""
    from server.database import engine

    admin = await f.make_user(email="admin@example.com", name="Ada Admin", role=User.GlobalRole.ADMIN)
    project = await f.make_project(name="Acme Shop")
    await f.make_member(project, admin, Role.MANAGER)
    conversation = await f.make_conversation(project, await f.make_visitor(project))
    row = await Conversation.select().where(Conversation.id == conversation.id).first()
    assert row is not None
    await f.make_api_key(admin, project, secret_hash=hashlib.sha256(b"prly_x_secret").hexdigest())
    live_stack.kill("worker")
    async with httpx.AsyncClient() as http:
        sent = await http.post(
            f"{live_stack.web_url}/api/v1/projects/{project.id}/conversations/{conversation.id}/messages",
            json={"body": "Your refund is on its way"},
            headers={"Authorization": "Bearer prly_x_secret"},
        )
        assert sent.status_code in (200, 202), sent.text
    await Conversation.delete().where(Conversation.id == conversation.id)
    live_stack.start("worker")
    page = await new_page()
    await accept_dialogs(page)
    await sign_in(page, live_stack, "admin@example.com")

    async def dead_letter_listed() -> bool:
        await page.goto(f"{live_stack.web_url}/console/admin/system")
        return await page.get_by_role("button", name="Replay all").count() == 1

    await until(dead_letter_listed, "the dead letter on the System page", within=60)
    await page.get_by_role("cell", name="conversation deleted", exact=True).wait_for()
    await page.get_by_role("cell", name="persist_messages").first.wait_for()  # its failed drain job
    await look(page, "journey-system-dead-letter")

    # Restored from a backup, say: the same row is back.
    columns = ", ".join(f'"{name}"' for name in row)
    values = ", ".join(f"${index}" for index in range(1, len(row) + 1))
    connection = await engine().get_new_connection()
    try:
        restore = f"INSERT INTO conversation ({columns}) VALUES ({values})"  # noqa: S608 (our own column names)
        await connection.execute(restore, *row.values())
    finally:
        await connection.close()
    await page.get_by_role("button", name=re.compile("^Replay message")).click()
    await page.get_by_text("1 message sent through the pipeline again").wait_for()
    await page.get_by_text("None: every accepted message was stored.").wait_for()

    async def stored() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await Message.select(Message.body).where(
            Message.conversation == conversation.id
        )
        return rows

    assert await until(stored, "the replayed message stored") == [{"body": "Your refund is on its way"}]

    async def sparkline_drawn() -> bool:  # the worker samples every 5 s: two samples draw a line
        await page.goto(f"{live_stack.web_url}/console/admin/system")
        return await page.locator("polyline.sparkline__line").count() == 2

    try:
        await until(sparkline_drawn, "the System page's sparklines", within=90)
    except AssertionError as error:
        raise AssertionError(f"{error}; the worker said:\n{live_stack.log('worker')[-3000:]}") from None
    await look(page, "journey-system-replayed")
