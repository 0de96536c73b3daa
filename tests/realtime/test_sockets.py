"""The gateway's per-socket bookkeeping, without sockets: slots, visitor routing, sessions."""

from __future__ import annotations

from server.realtime.audience import visitor_of_topic, visitor_topic
from server.realtime.connection import Connection, NamespaceSession, VisitorPrincipal
from server.realtime.sockets import SocketTable, VisitorSockets


def test_socket_table_reuses_slots_and_never_gives_zero() -> None:
    table = SocketTable()
    a, b, c = Connection(None), Connection(None), Connection(None)
    slots = [table.add(a), table.add(b), table.add(c)]
    assert 0 not in slots and len(set(slots)) == 3
    assert table.get(slots[1]) is b and len(table) == 3
    assert table.remove(slots[1]) is b
    assert table.remove(slots[1]) is None and table.get(slots[1]) is None
    assert table.get(0) is None and table.get(10_000) is None
    d = Connection(None)
    assert table.add(d) == slots[1]
    assert table.snapshot() == [a, d, c] and len(table) == 3


def test_visitor_sockets_hold_every_tab_and_forget_the_last() -> None:
    visitors = VisitorSockets()
    one, two, other = Connection(None), Connection(None), Connection(None)
    visitors.add(7, "v_a", one)
    visitors.add(7, "v_a", two)
    visitors.add(8, "v_a", other)  # the same uid in another project is another visitor
    assert list(visitors.sockets(7, "v_a")) == [one, two]
    assert list(visitors.sockets(8, "v_a")) == [other]
    visitors.remove(7, "v_a", one)
    assert list(visitors.sockets(7, "v_a")) == [two]
    visitors.remove(7, "v_a", one)  # twice is harmless
    visitors.remove(7, "v_a", two)
    assert list(visitors.sockets(7, "v_a")) == []
    assert list(visitors.sockets(9, "v_none")) == []


def test_visitor_topic_round_trip() -> None:
    assert visitor_of_topic(visitor_topic(12, "v:with:colons")) == (12, "v:with:colons")
    assert visitor_of_topic("a:12") is None


def test_connection_sessions_and_sends_after_close() -> None:
    conn = Connection(None)
    assert conn.closed and not conn.send("2")  # never opened: nothing is touched
    visitor = NamespaceSession("/visitor", 1, VisitorPrincipal(1, "v"))
    agent = NamespaceSession("/agent", 2, VisitorPrincipal(1, "v"))
    conn.add_session(visitor)
    assert conn.sessions is visitor and conn.session("/visitor") is visitor
    conn.add_session(agent)
    assert conn.all_sessions() == (visitor, agent) and conn.session("/agent") is agent
    assert conn.pop_session("/visitor") is visitor
    assert conn.sessions is agent and conn.pop_session("/visitor") is None
    assert conn.pop_session("/agent") is agent and conn.all_sessions() == ()
    conn.set_pending("/agent", True)
    assert conn.is_pending("/agent") and not conn.is_pending("/visitor")
    conn.set_pending("/agent", False)
    assert conn.pending is None
    conn.close(1000, "bye")  # a no-op once closed
    conn.mark_closed()
    assert conn.closed and conn.acks is None
