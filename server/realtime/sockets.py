"""The gateway's registries of open sockets, made for tens of thousands of entries.

- :class:`SocketTable`: every open connection by a small integer, the user data uWS keeps for
  each socket (8 bytes of list per socket, no dict, nothing else to keep alive).
- :class:`VisitorSockets`: each visitor's open sockets (all tabs), by project and visitor uid.
  A visitor's events go to these sockets straight from Python instead of through a uWS topic of
  its own: a per-visitor topic costs uWS a topic and a subscriber record per socket (a few hundred
  bytes of native memory), while a visitor topic rarely has more than one or two sockets, where
  uWS's C fan-out gains nothing. Topics many sockets share (an agent project's) stay in uWS.
"""

from __future__ import annotations

from collections.abc import Iterator

from server.realtime.connection import Connection


class SocketTable:
    """Connections by slot number; freed slots are reused. Slot 0 is never used (a NULL pointer)."""

    __slots__ = ("_free", "_slots", "count")

    def __init__(self) -> None:
        self._slots: list[Connection | None] = [None]
        self._free: list[int] = []
        self.count = 0

    def add(self, conn: Connection) -> int:
        self.count += 1
        if self._free:
            slot = self._free.pop()
            self._slots[slot] = conn
            return slot
        self._slots.append(conn)
        return len(self._slots) - 1

    def get(self, slot: int) -> Connection | None:
        return self._slots[slot] if 0 < slot < len(self._slots) else None

    def remove(self, slot: int) -> Connection | None:
        conn = self.get(slot)
        if conn is not None:
            self._slots[slot] = None
            self._free.append(slot)
            self.count -= 1
        return conn

    def snapshot(self) -> list[Connection]:
        """The open connections now (a list, so the table may change while it is walked)."""
        return [conn for conn in self._slots if conn is not None]

    def __len__(self) -> int:
        return self.count


class VisitorSockets:
    """``project id -> visitor uid -> socket(s)``; the uid key is the principal's own string."""

    __slots__ = ("_projects",)

    def __init__(self) -> None:
        self._projects: dict[int, dict[str, Connection | tuple[Connection, ...]]] = {}

    def add(self, project_id: int, visitor_uid: str, conn: Connection) -> None:
        visitors = self._projects.setdefault(project_id, {})
        held = visitors.get(visitor_uid)
        if held is None:
            visitors[visitor_uid] = conn
        elif isinstance(held, tuple):
            visitors[visitor_uid] = (*held, conn)
        else:
            visitors[visitor_uid] = (held, conn)

    def remove(self, project_id: int, visitor_uid: str, conn: Connection) -> None:
        visitors = self._projects.get(project_id)
        held = visitors.get(visitor_uid) if visitors is not None else None
        if visitors is None or held is None:
            return
        rest = tuple(c for c in (held if isinstance(held, tuple) else (held,)) if c is not conn)
        if len(rest) > 1:
            visitors[visitor_uid] = rest
        elif rest:
            visitors[visitor_uid] = rest[0]
        else:
            del visitors[visitor_uid]
            if not visitors:
                del self._projects[project_id]

    def project_ids(self) -> list[int]:
        """The projects with a visitor socket here."""
        return list(self._projects)

    def in_project(self, project_id: int) -> list[Connection]:
        """Every visitor socket of the project (a list: the registry may change meanwhile)."""
        found: list[Connection] = []
        for held in self._projects.get(project_id, {}).values():
            found.extend(held if isinstance(held, tuple) else (held,))
        return found

    def sockets(self, project_id: int, visitor_uid: str) -> Iterator[Connection]:
        visitors = self._projects.get(project_id)
        held = visitors.get(visitor_uid) if visitors is not None else None
        if held is None:
            return iter(())
        return iter(held) if isinstance(held, tuple) else iter((held,))
