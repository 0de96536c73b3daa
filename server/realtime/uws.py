"""The websocket route on socketify's C library, without its per-socket Python objects.

socketify's Python layer keeps, for every socket, a UUID, a tuple and a cffi handle in a dict (to
find the user data again), and wraps every callback in a fresh ``WebSocket`` object with its own
handle. At tens of thousands of sockets that is a few hundred bytes each, and work on every frame.
:func:`websocket_route` registers the gateway's own cffi callbacks with ``uws_ws`` instead; each
socket's user data is a plain integer (:attr:`Upgrade.accept`'s ``slot``), an index into the
gateway's socket table, so nothing per socket has to be kept alive for uWS.

Everything here runs on the libuv thread inside uWS callbacks, or from asyncio code between them
(one thread). The request object is valid only during the upgrade callback.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from socketify.native import ffi, lib

from server.errors import ErrorCode

log = logging.getLogger(__name__)

SSL = 0
"""The gateway serves plain websockets (TLS ends at the proxy)."""
TEXT = 1
"""uWS opcode of a text frame (socketify's own default is BINARY, unread by Socket.IO clients)."""
BINARY = 2
"""uWS opcode of a binary frame: only a binary packet's attachments are sent as one."""
_INTERNAL_BODY = json.dumps({"code": ErrorCode.INTERNAL})
"""The answer to an upgrade that failed on our side."""


class Upgrade:
    """One HTTP upgrade request, valid during the upgrade callback only."""

    __slots__ = ("_context", "_req", "_res", "done")

    def __init__(self, res: Any, req: Any, context: Any) -> None:
        self._res = res
        self._req = req
        self._context = context
        self.done = False

    def query(self, key: str) -> str | None:
        raw = self._read(lib.uws_req_get_query, key)
        return None if raw is None else raw.decode(errors="replace")

    def header(self, lower_case_name: str) -> str | None:
        raw = self._read(lib.uws_req_get_header, lower_case_name)
        return None if raw is None else raw.decode(errors="replace")

    def _read(self, getter: Any, name: str) -> bytes | None:
        key = name.encode()
        pointer = ffi.new("char **")
        length = getter(self._req, key, len(key), pointer)
        if pointer[0] == ffi.NULL:
            return None
        value: bytes = ffi.unpack(pointer[0], length)
        return value

    def refuse(self, status: str, content_type: str, body: str) -> None:
        """Answer with a plain HTTP response instead of upgrading (``status`` like ``400 Bad Request``)."""
        self.done = True
        status_data, body_data = status.encode(), body.encode()
        lib.uws_res_write_status(SSL, self._res, status_data, len(status_data))
        type_data = content_type.encode()
        lib.uws_res_write_header(SSL, self._res, b"Content-Type", 12, type_data, len(type_data))
        lib.uws_res_end(SSL, self._res, body_data, len(body_data), False)

    def accept(self, slot: int) -> None:
        """Upgrade to a websocket whose user data is ``slot`` (uWS calls ``open`` right away)."""
        self.done = True
        key = self._read(lib.uws_req_get_header, "sec-websocket-key") or b""
        protocol = self._read(lib.uws_req_get_header, "sec-websocket-protocol") or b""
        extensions = self._read(lib.uws_req_get_header, "sec-websocket-extensions") or b""
        lib.uws_res_upgrade(
            SSL,
            self._res,
            ffi.cast("void *", slot),
            key,
            len(key),
            protocol,
            len(protocol),
            extensions,
            len(extensions),
            self._context,
        )


class WebSocketHandlers(Protocol):
    """What the route calls; ``slot`` is the integer given to :meth:`Upgrade.accept`."""

    def on_upgrade(self, upgrade: Upgrade) -> None: ...

    def on_open(self, slot: int, ws: Any) -> None: ...

    def on_message(self, slot: int, data: bytes, text: bool) -> None: ...

    def on_close(self, slot: int) -> None: ...


@dataclass(frozen=True, slots=True)
class RouteOptions:
    max_payload: int
    idle_timeout_seconds: int
    max_backpressure: int
    close_on_backpressure_limit: bool = True


def _slot(ws: Any) -> int:
    return int(ffi.cast("uintptr_t", lib.uws_ws_get_user_data(SSL, ws)))


def _log_error(
    kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
) -> None:
    log.error("websocket callback failed", exc_info=(kind, value, trace) if kind and value else None)


def websocket_route(app: Any, path: str, options: RouteOptions, handlers: WebSocketHandlers) -> list[Any]:
    """Register ``path`` as a websocket route; returns what must be kept alive as long as the app."""

    def upgrade(res: Any, req: Any, context: Any, _: Any) -> None:
        request = Upgrade(res, req, context)
        try:
            handlers.on_upgrade(request)
        finally:
            if not request.done:
                request.refuse("500 Internal Server Error", "application/json", _INTERNAL_BODY)

    def open_(ws: Any, _: Any) -> None:
        handlers.on_open(_slot(ws), ws)

    def message(ws: Any, data: Any, length: int, opcode: int, _: Any) -> None:
        payload: bytes = ffi.unpack(data, length) if data != ffi.NULL else b""
        handlers.on_message(_slot(ws), payload, opcode == TEXT)

    def close(ws: Any, code: int, data: Any, length: int, _: Any) -> None:
        handlers.on_close(_slot(ws))

    callbacks: list[Any] = [
        ffi.callback(
            "void(uws_res_t*, uws_req_t*, uws_socket_context_t*, void*)", upgrade, onerror=_log_error
        ),
        ffi.callback("void(uws_websocket_t*, void*)", open_, onerror=_log_error),
        ffi.callback(
            "void(uws_websocket_t*, const char*, size_t, uws_opcode_t, void*)", message, onerror=_log_error
        ),
        ffi.callback("void(uws_websocket_t*, int, const char*, size_t, void*)", close, onerror=_log_error),
    ]
    owner = ffi.new("uws_socket_behavior_t *")  # uws_ws copies the struct
    behavior = owner[0]
    behavior.compression = 0  # permessage-deflate off: no zlib state per socket
    behavior.maxPayloadLength = options.max_payload
    behavior.idleTimeout = options.idle_timeout_seconds
    behavior.maxBackpressure = options.max_backpressure
    behavior.closeOnBackpressureLimit = options.close_on_backpressure_limit
    behavior.resetIdleTimeoutOnSend = False  # only the client's frames (pongs) prove it alive
    behavior.sendPingsAutomatically = False  # Engine.IO pings are ours, in the protocol
    behavior.maxLifetime = 0
    behavior.upgrade, behavior.open, behavior.message, behavior.close = callbacks
    behavior.drain = behavior.ping = behavior.pong = behavior.subscription = ffi.NULL
    lib.uws_ws(SSL, app.app, path.encode(), behavior, ffi.NULL)
    return callbacks


def send_text(ws: Any, data: bytes) -> None:
    lib.uws_ws_send_with_options(SSL, ws, data, len(data), TEXT, False, True)


def send_binary(ws: Any, data: bytes) -> None:
    lib.uws_ws_send_with_options(SSL, ws, data, len(data), BINARY, False, True)


def end(ws: Any, code: int, reason: bytes) -> None:
    """Close with a close frame; uWS calls the close callback before this returns."""
    lib.uws_ws_end(SSL, ws, code, reason, len(reason))


def subscribe(ws: Any, topic: bytes) -> None:
    lib.uws_ws_subscribe(SSL, ws, topic, len(topic))


def unsubscribe(ws: Any, topic: bytes) -> None:
    lib.uws_ws_unsubscribe(SSL, ws, topic, len(topic))
