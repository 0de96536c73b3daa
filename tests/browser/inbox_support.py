"""What the inbox's browser tests share: a project with agents, signing in, a python-socketio visitor."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import socketio
from playwright.async_api import Page

from server.accounts.tables import User
from server.accounts.tokens import visitor_token
from server.chat.tables import Message
from server.tenancy.tables import Project, ProjectMember
from tests import factories as f
from tests.browser.conftest import LiveStack


@dataclass
class InboxWorld:
    project: Project
    agents: list[User]
    """Two agents: Alice and Bob."""


async def inbox_world() -> InboxWorld:
    project = await f.make_project(name="Acme Shop", allowed_origins=["*"])
    alice = await f.make_user(email="alice@example.com", name="Alice Agent")
    bob = await f.make_user(email="bob@example.com", name="Bob Agent")
    await f.make_member(project, alice, ProjectMember.ProjectRole.AGENT)
    await f.make_member(project, bob, ProjectMember.ProjectRole.AGENT)
    return InboxWorld(project=project, agents=[alice, bob])


async def sign_in(page: Page, stack: LiveStack, user: User, next_path: str) -> None:
    await page.goto(f"{stack.web_url}/console/login?next={next_path}")
    await page.get_by_label("E-mail").fill(user.email)
    await page.get_by_label("Password").fill(f.DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{next_path}")


async def open_inbox(
    page: Page, stack: LiveStack, user: User, project_id: int, conversation_id: int | None = None
) -> None:
    path = f"/console/projects/{project_id}/inbox" + (f"/{conversation_id}" if conversation_id else "")
    await sign_in(page, stack, user, path + "?filter=all")
    await page.locator('#connection[data-state="connected"]').wait_for()


@dataclass
class Visitor:
    """A visitor on the widget's socket protocol, driven by python-socketio."""

    stack: LiveStack
    project_id: int
    uid: str = field(default_factory=lambda: "v_" + uuid.uuid4().hex[:16])
    client: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    received: list[dict[str, Any]] = field(default_factory=list)

    async def connect(self) -> Visitor:
        token, _ = visitor_token(self.project_id, self.uid, self.stack.env["SECRET_KEY"])

        async def on_message(envelope: dict[str, Any]) -> None:
            self.received.append(envelope["data"])

        self.client.on("message.created", on_message, namespace="/visitor")
        await self.client.connect(
            self.stack.realtime_url,
            namespaces=["/visitor"],
            auth={"token": token},
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    async def say(self, body: str) -> dict[str, Any]:
        ack: dict[str, Any] = await self.client.call(
            "message:send", {"body": body, "client_msg_id": str(uuid.uuid4())}, namespace="/visitor"
        )
        assert ack.get("accepted") is True, ack
        return ack

    async def call(self, event: str, payload: dict[str, Any]) -> Any:
        return await self.client.call(event, payload, namespace="/visitor")

    async def close(self) -> None:
        await self.client.disconnect()


async def conversation_of(visitor: Visitor, within: float = 15.0) -> int:
    """The id of the visitor's conversation, once the worker has stored its first message."""
    from server.chat.tables import Conversation

    deadline = asyncio.get_running_loop().time() + within
    while True:
        row = (
            await Conversation.select(Conversation.id).where(Conversation.visitor.uid == visitor.uid).first()
        )
        if row is not None:
            return int(row["id"])
        assert asyncio.get_running_loop().time() < deadline, "the visitor's conversation was not created"
        await asyncio.sleep(0.1)


async def stored_messages(conversation_id: int, count: int, within: float = 20.0) -> list[dict[str, Any]]:
    """The conversation's messages in seq order, once at least ``count`` are stored."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = (
            await Message.select(Message.seq, Message.body, Message.private)
            .where(Message.conversation == conversation_id)
            .order_by(Message.seq)
        )
        if len(rows) >= count:
            return list(rows)
        assert asyncio.get_running_loop().time() < deadline, f"only {len(rows)} of {count} messages stored"
        await asyncio.sleep(0.1)


async def thread_seqs(page: Page) -> list[int]:
    seqs: list[int] = await page.eval_on_selector_all(
        "#messages [data-seq]", "items => items.map(item => Number(item.dataset.seq))"
    )
    return seqs
