"""Many nodes at once on a Redis Cluster, through a primary failover (issue #15).

3 realtime, 2 web and 2 worker processes over one three-primary Valkey cluster with a replica per
primary (SAQ's queue on the run's own single server, as on a cluster it must be), with
``REDIS_ACK_REPLICAS=1``. Visitors are spread over the three realtime nodes and send alternately
over their socket and over the widget REST API of either web node; an agent on every realtime
node watches the project and agents on every node reply. Mid-stream one realtime node is killed
(-9): its agent and two visitors reconnect to the other nodes with the same auth and ``sync``
from their floor, as a client does; a third visitor, only on that node, does not come back.
Then one worker is killed (-9), then the primary that owns both the project's mailbox shard and
its event channel is killed (-9) and its replica promoted.

Then: every acknowledged message is stored exactly once, in order (the moved visitors' too,
sent before and after they moved); every socket on every node received every message of its
audience, live or through ``sync`` (after moving, and on the ``server:resync`` the server asked
for while the shard was failing over), and the moved sockets had through their sync the replies
published while they had no socket; a last round sent after the failover arrives live on every
node, without any sync; typing, navigation and presence of visitors on every node reach the
agents on every node. Presence across the dead node: the visitor who had only it still counts
online right after the kill, and the surviving nodes report it offline once its last heartbeat
expired (``REALTIME_HEARTBEAT_MS=2000`` here, so 6 s): not before, not never; the moved ones end
online, never reported offline if they were back before their old sockets expired.

The same test runs on the test run's own single Redis, without the failover.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio

from server.accounts.tokens import visitor_token
from server.chat.live import visitor_live_states
from server.chat.mailbox import CLUSTER_DRAIN_SHARDS, shard_of_project
from server.chat.tables import Conversation
from server.redis_client import Keys, make_redis
from server.settings import RedisSettings
from server.tenancy.tables import Project, ProjectMember
from tests.factories import make_member, make_project, make_user
from tests.processes import PYTHON, free_port, http_status, start, stop, wait_until
from tests.realtime.conftest import GatewayProcess, launch_gateway
from tests.realtime.helpers import agent_auth
from tests.redis_servers import ValkeyCluster, valkey_cluster

pytestmark = pytest.mark.slow

ORIGIN = "https://shop.example"
VISITORS_PER_NODE = 2
ROUNDS = 16
"""Messages per visitor before and during the failover."""
REPLY_EVERY = 4
"""An agent replies after every this many messages of a visitor."""
EPHEMERAL = ("typing.started", "visitor.navigated", "presence.changed")
VICTIM = 1
"""The realtime node killed mid-stream: its agent and visitors reconnect to the other two."""
HEARTBEAT_MS = 2000
"""The nodes' presence heartbeat here: a dead node's sockets expire 3 beats (6 s) after its last."""
EXPIRY_TOLERANCE = 0.5
"""Seconds an offline report may precede the dead entry's expiry (the clocks are one machine's)."""


@pytest.fixture
def replicated_cluster() -> Iterator[ValkeyCluster]:
    with valkey_cluster(primaries=3, replicas=1) as started:
        yield started


@dataclass
class Peer:
    """One python-socketio client, what it received live and through ``sync``."""

    name: str
    namespace: str
    gateway: GatewayProcess
    auth: dict[str, Any]
    project_id: int
    user_id: int | None = None
    """An agent's user id (a visitor's presence subject is its uid, ``name``)."""
    client: socketio.AsyncClient = field(default_factory=lambda: socketio.AsyncClient(reconnection=False))
    live: set[tuple[int, int]] = field(default_factory=set)
    synced: set[tuple[int, int]] = field(default_factory=set)
    resyncs: int = 0
    catching_up: list[asyncio.Task[None]] = field(default_factory=list)
    ephemeral: list[tuple[str, Any, float]] = field(default_factory=list)
    """typing.started, visitor.navigated and presence.changed as received, with when (Unix time)."""
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the current socket is disconnected (its node died)."""

    @property
    def seen(self) -> set[tuple[int, int]]:
        return self.live | self.synced

    async def connect(self) -> Peer:
        async def on_message(envelope: dict[str, Any]) -> None:
            self.live.add((envelope["conversation_id"], envelope["seq"]))

        async def on_resync(_: Any) -> None:
            self.resyncs += 1
            self.catching_up.append(asyncio.create_task(self.catch_up()))

        self.client.on("message.created", on_message, namespace=self.namespace)
        for name in EPHEMERAL:
            self.client.on(name, self._recorder(name), namespace=self.namespace)
        self.client.on("server:resync", on_resync, namespace=self.namespace)
        dropped = self.dropped = asyncio.Event()

        async def on_disconnect(*_: Any) -> None:
            dropped.set()

        self.client.on("disconnect", on_disconnect, namespace=self.namespace)
        await self.client.connect(
            self.gateway.url,
            namespaces=[self.namespace],
            auth=self.auth,
            transports=["websocket"],
            wait_timeout=10,
        )
        return self

    async def move(self, gateway: GatewayProcess) -> None:
        """What a client whose node died does: connect to another node with the same auth, then
        ``sync`` from its floor (the connect handler of the client rule in docs/protocol.md)."""
        self.gateway = gateway
        self.client = socketio.AsyncClient(reconnection=False)
        await self.connect()
        await self.catch_up()

    def _recorder(self, name: str) -> Any:
        async def record(data: Any) -> None:
            self.ephemeral.append((name, data, time.time()))

        return record

    def heard(self, name: str) -> list[Any]:
        return [data for event, data, _ in self.ephemeral if event == name]

    def presence_of(self, key: str, subject: str | int) -> list[tuple[str, float]]:
        """The statuses reported of one visitor (``visitor_uid``) or agent (``user_id``), with when."""
        return [
            (change["status"], at)
            for event, data, at in self.ephemeral
            if event == "presence.changed"
            for change in data["data"]["changes"]
            if change.get(key) == subject
        ]

    async def catch_up(self) -> None:
        """What the browser client does on ``server:resync``: sync every conversation from its floor.

        An agent learns the project's conversations from the list (here: PostgreSQL directly);
        a visitor knows its own (the widget keeps it).
        """
        query = Conversation.select(Conversation.id).where(Conversation.project == self.project_id)
        if self.namespace == "/visitor":
            query = query.where(Conversation.visitor.uid == self.name)
        for row in await query:
            conversation_id = row["id"]
            mine = {seq for cid, seq in self.seen if cid == conversation_id}
            floor = 0
            while floor + 1 in mine:
                floor += 1
            has_more = True
            while has_more:
                answer = await self.client.call(
                    "sync",
                    {"conversations": {str(conversation_id): floor}},
                    namespace=self.namespace,
                    timeout=20,
                )
                page = answer["conversations"].get(str(conversation_id))
                if page is None:
                    break
                for message in page["messages"]:
                    self.synced.add((conversation_id, message["seq"]))
                    floor = max(floor, message["seq"])
                has_more = page["has_more"] and bool(page["messages"])

    async def call(self, event: str, payload: dict[str, Any]) -> Any:
        """Emit and wait for the ack; a socket that drops meanwhile fails the call at once, as a
        browser's does (python-socketio alone would wait out the timeout)."""
        dropped = asyncio.ensure_future(self.dropped.wait())
        calling = asyncio.ensure_future(
            self.client.call(event, payload, namespace=self.namespace, timeout=20)
        )
        try:
            await asyncio.wait({calling, dropped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            dropped.cancel()
        if not calling.done():
            calling.cancel()
            raise socketio.exceptions.DisconnectedError(f"{self.name}'s socket dropped")
        return calling.result()

    async def close(self) -> None:
        for task in self.catching_up:
            await task
        await self.client.disconnect()


@dataclass
class Sent:
    """Every message a sender had acknowledged, by client_msg_id, in the order accepted."""

    by_sender: dict[str, list[str]] = field(default_factory=dict)
    retried: int = 0


async def send_until_accepted(send: Any, sent: Sent, sender: str, client_msg_id: str) -> None:
    """Send with one client_msg_id until acknowledged, as a client does after a 503 or a lost ack."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        try:
            if await send():
                sent.by_sender.setdefault(sender, []).append(client_msg_id)
                return
        except (httpx.HTTPError, TimeoutError, socketio.exceptions.SocketIOError):
            pass
        sent.retried += 1
        assert asyncio.get_running_loop().time() < deadline, f"{sender} could not send {client_msg_id}"
        await asyncio.sleep(0.1)


async def _visitor_sends(
    visitor: Peer, uid: str, token: str, webs: list[str], rounds: range, sent: Sent, http: httpx.AsyncClient
) -> None:
    for index in rounds:
        client_msg_id = str(uuid.uuid4())
        body = {"body": f"{uid} #{index}", "client_msg_id": client_msg_id}
        web = webs[index % len(webs)]

        async def send(body: dict[str, Any] = body, web: str = web, socket: bool = index % 2 == 0) -> bool:
            if socket:
                ack = await visitor.call("message:send", body)
                return bool(ack.get("accepted"))
            answer = await http.post(
                f"{web}/api/widget/v1/messages",
                json=body,
                headers={"authorization": f"Bearer {token}", "origin": ORIGIN},
            )
            return answer.status_code == 202

        await send_until_accepted(send, sent, uid, client_msg_id)
        await asyncio.sleep(0.05)


async def _agents_reply(agents: list[Peer], project_id: int, sent: Sent, replies: int) -> None:
    """Agents on every node answer each conversation in turn."""
    done = 0
    while done < replies:
        conversations = await Conversation.select(Conversation.id).where(Conversation.project == project_id)
        if not conversations:
            await asyncio.sleep(0.1)
            continue
        for row in conversations:
            if done >= replies:
                break
            agent = agents[done % len(agents)]
            client_msg_id = str(uuid.uuid4())
            body = {"conversation_id": row["id"], "body": f"reply {done}", "client_msg_id": client_msg_id}

            async def send(agent: Peer = agent, body: dict[str, Any] = body) -> bool:
                ack = await agent.call("message:send", body)
                return bool(ack.get("accepted"))

            await send_until_accepted(send, sent, agent.name, client_msg_id)
            done += 1
        await asyncio.sleep(0.2)


async def _stored(project_id: int) -> list[dict[str, Any]]:
    from server.database import engine

    connection = await engine().get_new_connection()
    try:
        rows = await connection.fetch(
            "SELECT m.conversation, m.seq, m.client_msg_id::text AS id, m.sender_kind, v.uid"
            " FROM message m JOIN conversation c ON c.id = m.conversation JOIN visitor v ON v.id = c.visitor"
            " WHERE m.project = $1 ORDER BY m.conversation, m.seq",
            project_id,
        )
    finally:
        await connection.close()
    return [dict(row) for row in rows]


async def _project_on_one_primary(cluster: ValkeyCluster) -> Project:
    """A project whose mailbox shard and event channel share a primary: the one to kill."""
    for _ in range(40):
        project = await make_project(allowed_origins=[ORIGIN])
        mailbox = cluster.primary_for(shard_of_project(project.id, CLUSTER_DRAIN_SHARDS).token)
        if cluster.primary_for(Keys.project_events(project.id)) is mailbox:
            return project
    raise AssertionError("no project had its mailboxes and channel on one primary")


@pytest.mark.parametrize("topology", ["cluster", "single"])
async def test_three_realtime_two_web_two_workers_behave_as_one_system(
    topology: str,
    request: pytest.FixtureRequest,
    settings: Any,
    subprocess_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """On the cluster through a primary failover; on the test run's own Redis (no replica) without."""
    env = {**subprocess_env, "LOG_LEVEL": "WARNING"}
    cluster: ValkeyCluster | None = None
    if topology == "cluster":
        cluster = request.getfixturevalue("replicated_cluster")
        assert cluster is not None
        env.update(REDIS_URL=cluster.url, QUEUE_REDIS_URL=settings.queue_redis.url, REDIS_ACK_REPLICAS="1")
        project = await _project_on_one_primary(cluster)
    else:
        project = await make_project(allowed_origins=[ORIGIN])
    agents_users = [await make_user() for _ in range(3)]
    for user in agents_users:
        await make_member(project, user, ProjectMember.ProjectRole.AGENT)
    processes = []
    web_ports = [free_port(), free_port()]
    presence_redis = make_redis(
        RedisSettings(url=settings.redis.url if cluster is None else cluster.url, max_connections=4)
    )
    try:
        for index, port in enumerate(web_ports):
            processes.append(
                start(
                    [PYTHON, "-m", "server", "web"],
                    {**env, "WEB_PORT": str(port)},
                    tmp_path / f"web{index}.log",
                )
            )
        for index in range(2):
            processes.append(
                start([PYTHON, "-m", "saq", "tasks.worker.settings"], env, tmp_path / f"worker{index}.log")
            )
        gateways = [
            launch_gateway(env, tmp_path / f"realtime{index}.log", REALTIME_HEARTBEAT_MS=str(HEARTBEAT_MS))
            for index in range(3)
        ]
        webs = [f"http://127.0.0.1:{port}" for port in web_ports]
        for web in webs:
            wait_until(_ready(web), timeout=60, what=f"{web}/readyz")
        secret = settings.security.secret_key
        agents = [
            await Peer(
                f"agent{index}", "/agent", gateway, agent_auth(settings, user.id), project.id, user.id
            ).connect()
            for index, (gateway, user) in enumerate(zip(gateways, agents_users, strict=True))
        ]
        uids = [f"v_many_{node}_{n}" for node in range(3) for n in range(VISITORS_PER_NODE)]
        tokens = {uid: visitor_token(project.id, uid, secret)[0] for uid in uids}
        visitors = {
            uid: await Peer(
                uid, "/visitor", gateways[index // VISITORS_PER_NODE], {"token": tokens[uid]}, project.id
            ).connect()
            for index, uid in enumerate(uids)
        }
        # One more visitor only on the node that will die, who sends nothing and never comes back
        # (the tab was closed as the node died): its presence must outlive the node by the expiry.
        gone = await Peer(
            "v_many_gone",
            "/visitor",
            gateways[VICTIM],
            {"token": visitor_token(project.id, "v_many_gone", secret)[0]},
            project.id,
        ).connect()
        survivors = [agent for index, agent in enumerate(agents) if index != VICTIM]
        deadline = asyncio.get_running_loop().time() + 30
        while not all(agent.presence_of("visitor_uid", gone.name) for agent in survivors):
            assert asyncio.get_running_loop().time() < deadline, "v_many_gone never came online"
            await asyncio.sleep(0.1)
        moving = [peer for peer in [*agents, *visitors.values()] if peer.gateway is gateways[VICTIM]]
        sent = Sent()
        async with httpx.AsyncClient(timeout=20) as http:
            streaming = [
                asyncio.create_task(
                    _visitor_sends(visitors[uid], uid, tokens[uid], webs, range(ROUNDS), sent, http)
                )
                for uid in uids
            ]
            replying = asyncio.create_task(
                _agents_reply(agents, project.id, sent, len(uids) * ROUNDS // REPLY_EVERY)
            )

            async def some_stored() -> bool:
                return len(await _stored(project.id)) >= len(uids) * 3

            deadline = asyncio.get_running_loop().time() + 90
            while not await some_stored():
                assert asyncio.get_running_loop().time() < deadline, "the workers stored nothing"
                await asyncio.sleep(0.2)
            # A realtime node dies (kill -9) while its visitors are sending: its sockets move to
            # the others. Then one worker dies mid-drain (kill -9), then the primary fails over:
            # the other worker and the drain tokens' expiry carry on. (The realtime node first:
            # a dead worker's shard waits out its token, which would keep the replies sent while
            # the moved sockets are away from being published before their presence expired.)
            kill = await _kill_realtime_node(
                gateways, moving, gone, survivors[0], sent, project.id, presence_redis
            )
            os.killpg(processes[2].pid, signal.SIGKILL)
            processes[2].wait(timeout=10)
            if cluster is not None:
                victim = cluster.primary_for(Keys.project_events(project.id))
                await asyncio.to_thread(cluster.fail_over, victim)
            await asyncio.wait_for(asyncio.gather(*streaming, replying), timeout=180)
            accepted_before = sum(len(ids) for ids in sent.by_sender.values())

            # A last round after the failover: each visitor once more, over its socket.
            before_last = {peer.name: set(peer.live) for peer in [*agents, *visitors.values()]}
            last = [
                asyncio.create_task(
                    _visitor_sends(
                        visitors[uid], uid, tokens[uid], webs, range(ROUNDS, ROUNDS + 1), sent, http
                    )
                )
                for uid in uids
            ]
            await asyncio.wait_for(asyncio.gather(*last), timeout=60)
        accepted = {i for ids in sent.by_sender.values() for i in ids}
        assert len(accepted) == accepted_before + len(uids)

        async def all_stored() -> bool:
            return len(await _stored(project.id)) >= len(accepted)

        deadline = asyncio.get_running_loop().time() + 120
        while not await all_stored():
            assert asyncio.get_running_loop().time() < deadline, (
                f"stored {len(await _stored(project.id))} of {len(accepted)}"
            )
            await asyncio.sleep(0.2)
        rows = await _stored(project.id)
        ids = [row["id"] for row in rows]
        assert len(ids) == len(set(ids)), "a message was stored twice"
        assert set(ids) == accepted, "stored messages differ from the acknowledged ones"
        by_conversation: dict[int, list[int]] = {}
        for row in rows:
            by_conversation.setdefault(row["conversation"], []).append(row["seq"])
        for seqs in by_conversation.values():
            assert seqs == list(range(1, len(seqs) + 1)), "seq not gap-free"
        for uid in uids:
            mine = [row["id"] for row in rows if row["uid"] == uid and row["sender_kind"] == "visitor"]
            assert mine == sent.by_sender[uid], f"{uid}'s messages not stored in the order accepted"

        everything = {(row["conversation"], row["seq"]) for row in rows}
        conversation_of = {row["uid"]: row["conversation"] for row in rows}
        audiences = {agent.name: everything for agent in agents}
        for uid in uids:
            audiences[uid] = {key for key in everything if key[0] == conversation_of[uid]}
        peers = [*agents, *visitors.values()]

        def complete() -> bool:
            return all(audiences[peer.name] <= peer.seen for peer in peers)

        deadline = asyncio.get_running_loop().time() + 60
        while not complete():
            assert asyncio.get_running_loop().time() < deadline, {
                peer.name: sorted(audiences[peer.name] - peer.seen)[:5] for peer in peers
            }
            await asyncio.sleep(0.2)
        # The dead node's agent and visitors, now on the others, synced what was published while
        # they had no socket; what the visitors sent from their new node was stored (in order:
        # above).
        for peer in moving:
            assert peer.gateway is not gateways[VICTIM]
            missed = kill.while_away & audiences[peer.name]
            assert missed, f"nothing was published for {peer.name} while it was away"
            assert missed <= peer.synced, f"{peer.name} did not sync {sorted(missed - peer.synced)}"
            if peer.name in uids:
                assert len(sent.by_sender[peer.name]) > kill.accepted_when_moved[peer.name]
        # The last round, sent once the failover was over, reached every node live.
        last_round = {(row["conversation"], row["seq"]) for row in rows if row["id"] in _last_ids(sent, uids)}
        for peer in peers:
            wanted = last_round & audiences[peer.name]
            assert wanted <= peer.live - before_last[peer.name], f"{peer.name} missed the last round live"
        live = {peer.name: len(peer.live & audiences[peer.name]) for peer in peers}
        print(
            f"\n{len(accepted)} messages; {sent.retried} sends retried during the failover;"
            f" live deliveries per socket {live} of {len(everything)};"
            f" resyncs {[peer.resyncs for peer in peers]};"
            f" realtime node killed with {kill.accepted_when_moved} sent, its peers back"
            f" {max(kill.moved_at.values()) - kill.checked_at:.1f}s later,"
            f" {gone.name}'s presence due to expire {kill.expiry[gone.name] - kill.checked_at:.1f}s after"
        )
        # Socket-level events cross nodes too: presence, typing and navigation of every visitor
        # (on every node) reach the agent on every node.
        for index, uid in enumerate(uids):
            conversation = conversation_of[uid]
            await visitors[uid].call("typing", {"conversation_id": conversation, "typing": True})
            await visitors[uid].call("navigate", {"url": f"https://shop.example/{index}", "title": uid})
        for agent in agents:

            def crossed(agent: Peer = agent) -> bool:
                online = {
                    c.get("visitor_uid")
                    for event in agent.heard("presence.changed")
                    for c in event["data"]["changes"]
                    if c["status"] == "online"
                }
                typing = {e["data"].get("visitor_uid") for e in agent.heard("typing.started")}
                navigated = {e["data"]["visitor_uid"] for e in agent.heard("visitor.navigated")}
                return set(uids) <= online and set(uids) <= typing and set(uids) <= navigated

            deadline = asyncio.get_running_loop().time() + 20
            while not crossed():
                assert asyncio.get_running_loop().time() < deadline, f"{agent.name}: {agent.ephemeral[-10:]}"
                await asyncio.sleep(0.1)
        await _presence_outlived_the_node(kill, survivors, uids, presence_redis, project.id)
        for peer in peers:
            await peer.close()
    finally:
        await presence_redis.aclose()
        for gateway in locals().get("gateways", []):
            stop(gateway.process)
        for process in processes:
            stop(process, timeout=30)


@dataclass
class NodeKill:
    """What :func:`_kill_realtime_node` saw: when each dead socket's presence was due to expire
    (Unix time, its last heartbeat + TTL), when its peer had reconnected elsewhere."""

    gone: Peer
    moving: list[Peer]
    checked_at: float
    expiry: dict[str, float]
    moved_at: dict[str, float]
    accepted_when_moved: dict[str, int]
    while_away: set[tuple[int, int]]
    """Messages published while the moved peers had no socket."""


async def _kill_realtime_node(
    gateways: list[GatewayProcess],
    moving: list[Peer],
    gone: Peer,
    writer: Peer,
    sent: Sent,
    project_id: int,
    redis: Any,
) -> NodeKill:
    """Kill ``gateways[VICTIM]`` (its process group, -9) once its visitors are a quarter through
    their messages; check its sockets still count online; while they are away ``writer`` (an
    agent on another node) answers each of its visitors; then move ``moving`` to the other nodes."""
    deadline = asyncio.get_running_loop().time() + 90
    while not all(
        len(sent.by_sender.get(peer.name, ())) >= ROUNDS // 4
        for peer in moving
        if peer.namespace == "/visitor"
    ):
        assert asyncio.get_running_loop().time() < deadline, "the victim's visitors sent nothing"
        await asyncio.sleep(0.05)
    os.killpg(gateways[VICTIM].process.pid, signal.SIGKILL)
    gateways[VICTIM].process.wait(timeout=10)
    # Right after: its sockets still count (online as the REST API reads it, status online as
    # presence.changed reports it) until their last heartbeat expires.
    expiry = {}
    for peer in [gone, *moving]:
        kind, subject = _subject(peer)
        entries = await redis.zrange(Keys.presence_sockets(project_id, kind, subject), 0, -1, withscores=True)
        assert len(entries) == 1, f"{peer.name}'s sockets right after the kill: {entries}"
        expiry[peer.name] = entries[0][1] / 1000
    checked_at = time.time()
    states = await visitor_live_states(redis, project_id, [gone.name])
    status = await redis.get(Keys.presence_status(project_id, "visitor", gone.name))
    assert states[gone.name].online, f"{gone.name} counted offline at once"
    assert status in (b"online", "online"), f"{gone.name}'s status right after the kill: {status!r}"
    # While they are away, a reply to each of the dead node's visitors, published (another
    # node's agent has it live) before they come back: they can have it only from their sync.
    away = []
    for peer in moving:
        if peer.namespace != "/visitor":
            continue
        rows = await Conversation.select(Conversation.id).where(
            (Conversation.project == project_id) & (Conversation.visitor.uid == peer.name)
        )
        assert rows, f"{peer.name} has no conversation yet"
        client_msg_id = str(uuid.uuid4())
        body = {
            "conversation_id": rows[0]["id"],
            "body": "while you were away",
            "client_msg_id": client_msg_id,
        }

        async def send(body: dict[str, Any] = body) -> bool:
            return bool((await writer.call("message:send", body)).get("accepted"))

        await send_until_accepted(send, sent, writer.name, client_msg_id)
        away.append(client_msg_id)
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        published = {
            (row["conversation"], row["seq"]) for row in await _stored(project_id) if row["id"] in away
        }
        if len(published) == len(away) and published <= writer.live:
            break
        assert asyncio.get_running_loop().time() < deadline, "the replies while away were not published"
        await asyncio.sleep(0.1)
    # Its clients notice, reconnect to the other nodes with the same auth, and sync.
    others = [gateway for index, gateway in enumerate(gateways) if index != VICTIM]
    moved_at = {}
    for index, peer in enumerate(moving):
        await asyncio.wait_for(peer.dropped.wait(), timeout=30)
        await peer.move(others[index % len(others)])
        moved_at[peer.name] = time.time()
    accepted = {peer.name: len(sent.by_sender.get(peer.name, ())) for peer in moving}
    return NodeKill(gone, moving, checked_at, expiry, moved_at, accepted, published)


async def _presence_outlived_the_node(
    kill: NodeKill, survivors: list[Peer], uids: list[str], redis: Any, project_id: int
) -> None:
    """The visitor who had only the dead node goes offline, reported by the surviving nodes'
    sweepers once its last heartbeat expired: not at once, not never. Those who reconnected
    elsewhere end online: never reported offline if they were back before their old sockets
    expired, else offline then online again."""
    gone = kill.gone.name
    for agent in survivors:
        deadline = asyncio.get_running_loop().time() + 90
        while "offline" not in [status for status, _ in agent.presence_of("visitor_uid", gone)]:
            reported = agent.presence_of("visitor_uid", gone)
            assert asyncio.get_running_loop().time() < deadline, (
                f"{agent.name} never heard {gone} offline: {reported}"
            )
            await asyncio.sleep(0.1)
        reported = agent.presence_of("visitor_uid", gone)
        assert [status for status, _ in reported] == ["online", "offline"], reported
        offline_at = reported[1][1]
        assert offline_at > kill.checked_at
        assert offline_at >= kill.expiry[gone] - EXPIRY_TOLERANCE, (
            f"{gone} reported offline {kill.expiry[gone] - offline_at:.2f}s before its heartbeat expired"
        )
        for peer in kill.moving:
            kind, subject = _subject(peer)
            key = "visitor_uid" if kind == "visitor" else "user_id"

            def statuses(agent: Peer = agent, key: str = key, subject: str | int = subject) -> list[str]:
                return [status for status, _ in agent.presence_of(key, subject)]

            # (an agent heard nothing of an agent connected before it, unless that one went offline)
            deadline = asyncio.get_running_loop().time() + 30
            while statuses()[-1:] != ["online"] and (kind == "visitor" or statuses()):
                assert asyncio.get_running_loop().time() < deadline, (
                    f"{agent.name} heard {peer.name} {statuses()}"
                )
                await asyncio.sleep(0.1)
            if kill.moved_at[peer.name] < kill.expiry[peer.name]:
                assert "offline" not in statuses(), f"{agent.name} heard {peer.name} {statuses()}"
        print(f"{agent.name} heard {gone} offline {offline_at - kill.expiry[gone]:+.2f}s after its expiry")
    states = await visitor_live_states(redis, project_id, [gone, *uids])
    assert not states[gone].online, f"{gone} still counts online"
    assert all(states[uid].online for uid in uids), states


def _subject(peer: Peer) -> tuple[str, str | int]:
    """A peer's presence subject: ("visitor", uid) or ("agent", user id)."""
    if peer.user_id is None:
        return "visitor", peer.name
    return "agent", peer.user_id


def _last_ids(sent: Sent, uids: list[str]) -> set[str]:
    return {sent.by_sender[uid][-1] for uid in uids}


def _ready(web: str) -> Callable[[], bool]:
    return lambda: http_status(f"{web}/readyz") == 200
