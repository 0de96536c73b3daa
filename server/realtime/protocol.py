"""Engine.IO v4 / Socket.IO v5 codec for the websocket transport: pure functions, no I/O.

Every websocket text frame is one Engine.IO packet: a type digit and an optional payload.
Engine.IO ``message`` packets (``4``) carry one Socket.IO packet::

    <sio type>[<binary count>-][/<namespace>,][<ack id>][<json>]

Binary packets (``5``, ``6``: ``<type><count>-...``) announce ``count`` binary frames that follow;
their JSON holds ``{"_placeholder": true, "num": i}`` where attachment ``i`` belongs.
:func:`parse_socket_packet` returns such a packet with ``attachments`` set, and :func:`attach`
puts the frames in place (as ``bytes``) once they have arrived. Anything that does not parse
raises :class:`MalformedPacket`; the gateway closes the connection for it, as Socket.IO servers do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import msgspec

from server.json_depth import MAX_JSON_DEPTH, json_depth_exceeds

MAX_ACK_ID_DIGITS = 15
"""An ack id longer than this is malformed (JavaScript clients count from 0 upwards)."""
MAX_NAMESPACE_LENGTH = 64
MAX_ATTACHMENTS = 16
"""Binary frames one packet may announce (each is at most ``maxPayload`` bytes)."""


class EngineType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class SocketType(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


class ProtocolError(ValueError):
    """A frame the gateway cannot accept; the message is safe to show the client."""


class MalformedPacket(ProtocolError):
    pass


class UnsupportedPacket(ProtocolError):
    """Well-formed but not offered here."""


@dataclass(frozen=True, slots=True)
class SocketPacket:
    type: SocketType
    namespace: str
    data: Any = None
    """CONNECT: the auth object or None. EVENT: ``[name, *args]``. ACK: the list of ack arguments."""
    ack_id: int | None = None
    attachments: int = 0
    """A binary packet: how many binary frames follow before it is whole (see :func:`attach`)."""

    @property
    def event(self) -> str:
        """The event name of an EVENT packet."""
        name: str = self.data[0]
        return name

    @property
    def args(self) -> list[Any]:
        """The arguments of an EVENT packet (after the name)."""
        rest: list[Any] = self.data[1:]
        return rest


_json_decoder = msgspec.json.Decoder()
_json_encoder = msgspec.json.Encoder()


def engine_type(frame: str) -> EngineType:
    """The Engine.IO packet type of a text frame."""
    if not frame or not "0" <= frame[0] <= "6":
        raise MalformedPacket("unknown Engine.IO packet type")
    return EngineType(ord(frame[0]) - 48)


def parse_socket_packet(text: str) -> SocketPacket:
    """Parse the Socket.IO packet carried by an Engine.IO message (the frame without its ``4``)."""
    if not text or not "0" <= text[0] <= "6":
        raise MalformedPacket("unknown Socket.IO packet type")
    kind = SocketType(ord(text[0]) - 48)
    if kind is SocketType.CONNECT_ERROR:
        raise MalformedPacket("CONNECT_ERROR is sent by servers only")
    i, end = 1, len(text)
    attachments = 0
    if kind in (SocketType.BINARY_EVENT, SocketType.BINARY_ACK):
        dash = text.find("-", 1, 4)
        if dash == -1 or not text[1:dash].isdigit():
            raise MalformedPacket("binary packet without its attachment count")
        attachments = int(text[1:dash])
        if not 1 <= attachments <= MAX_ATTACHMENTS:
            raise MalformedPacket(f"a binary packet carries 1 to {MAX_ATTACHMENTS} attachments")
        i = dash + 1
    namespace = "/"
    if i < end and text[i] == "/":
        comma = text.find(",", i)
        stop = end if comma == -1 else comma
        namespace = text[i:stop]
        i = stop if comma == -1 else comma + 1
        if len(namespace) > MAX_NAMESPACE_LENGTH:
            raise MalformedPacket("namespace too long")
    j = i
    while j < end and "0" <= text[j] <= "9":
        j += 1
    ack_id: int | None = None
    if j > i:
        if j - i > MAX_ACK_ID_DIGITS:
            raise MalformedPacket("ack id too long")
        ack_id = int(text[i:j])
    data: Any = None
    if j < end:
        if json_depth_exceeds(text[j:]):  # before the decoder recurses (server/json_depth.py)
            raise MalformedPacket(f"payload nested deeper than {MAX_JSON_DEPTH} levels")
        try:
            data = _json_decoder.decode(text[j:])
        except msgspec.DecodeError:
            raise MalformedPacket("payload is not valid JSON") from None
    packet = SocketPacket(kind, namespace, data, ack_id, attachments)
    if attachments:
        expected = SocketType.EVENT if kind is SocketType.BINARY_EVENT else SocketType.ACK
        _checked(SocketPacket(expected, namespace, data, ack_id))  # the shape, before frames arrive
        return packet
    return _checked(packet)


def attach(packet: SocketPacket, buffers: list[bytes]) -> SocketPacket:
    """The whole packet, as an EVENT or ACK: each placeholder replaced by its binary frame.

    Every attachment must be referred to exactly once by a well-formed placeholder.
    """
    if len(buffers) != packet.attachments:
        raise MalformedPacket("wrong number of binary attachments")
    used: set[int] = set()

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(item) for item in value]
        if isinstance(value, dict):
            if value.get("_placeholder") is True:
                num = value.get("num")
                if type(num) is not int or not 0 <= num < len(buffers) or num in used or len(value) != 2:
                    raise MalformedPacket("bad binary placeholder")
                used.add(num)
                return buffers[num]
            return {key: fill(item) for key, item in value.items()}
        return value

    data = fill(packet.data)
    if len(used) != len(buffers):
        raise MalformedPacket("a binary attachment is not referred to")
    kind = SocketType.EVENT if packet.type is SocketType.BINARY_EVENT else SocketType.ACK
    return _checked(SocketPacket(kind, packet.namespace, data, packet.ack_id))


def _deconstruct(value: Any, buffers: list[bytes]) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        buffers.append(bytes(value))
        return {"_placeholder": True, "num": len(buffers) - 1}
    if isinstance(value, list | tuple):
        return [_deconstruct(item, buffers) for item in value]
    if isinstance(value, dict):
        return {key: _deconstruct(item, buffers) for key, item in value.items()}
    return value


def encode_with_attachments(
    kind: SocketType, namespace: str, data: list[Any], ack_id: int | None = None
) -> tuple[str, list[bytes]]:
    """An EVENT (``data`` = name and arguments) or ACK whose data may hold ``bytes``: the text frame
    and the binary frames to send after it. Without ``bytes`` it is the plain packet."""
    buffers: list[bytes] = []
    plain = _deconstruct(data, buffers)
    ack = "" if ack_id is None else str(ack_id)
    if not buffers:
        return _prefix(kind, namespace) + ack + _json(plain), []
    binary = SocketType.BINARY_EVENT if kind is SocketType.EVENT else SocketType.BINARY_ACK
    head = f"4{binary.value}{len(buffers)}-" + ("" if namespace == "/" else f"{namespace},")
    return head + ack + _json(plain), buffers


def _checked(packet: SocketPacket) -> SocketPacket:
    kind, data = packet.type, packet.data
    if kind is SocketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            raise MalformedPacket("CONNECT payload must be an object")
        if packet.ack_id is not None:
            raise MalformedPacket("CONNECT takes no ack id")
    elif kind is SocketType.DISCONNECT:
        if data is not None or packet.ack_id is not None:
            raise MalformedPacket("DISCONNECT takes no payload")
    elif kind is SocketType.EVENT:
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise MalformedPacket("EVENT payload must be a list starting with the event name")
    elif kind is SocketType.ACK:
        if packet.ack_id is None:
            raise MalformedPacket("ACK needs an ack id")
        if not isinstance(data, list):
            raise MalformedPacket("ACK payload must be a list")
    return packet


def _json(value: Any) -> str:
    return _json_encoder.encode(value).decode()


def _prefix(kind: SocketType, namespace: str) -> str:
    # "4" is the Engine.IO message type; the root namespace is implicit.
    return f"4{kind.value}" if namespace == "/" else f"4{kind.value}{namespace},"


def encode_open(sid: str, *, ping_interval_ms: int, ping_timeout_ms: int, max_payload: int) -> str:
    """The Engine.IO handshake: the first frame the server sends."""
    return "0" + _json(
        {
            "sid": sid,
            "upgrades": [],
            "pingInterval": ping_interval_ms,
            "pingTimeout": ping_timeout_ms,
            "maxPayload": max_payload,
        }
    )


PING = "2"
PONG = "3"
ENGINE_CLOSE = "1"


def encode_connect(namespace: str, sid: str) -> str:
    return _prefix(SocketType.CONNECT, namespace) + _json({"sid": sid})


def encode_connect_error(namespace: str, message: str, data: dict[str, Any] | None = None) -> str:
    """Refuse a namespace: clients surface ``message`` (and ``data``) in their connect_error handler."""
    payload: dict[str, Any] = {"message": message}
    if data is not None:
        payload["data"] = data
    return _prefix(SocketType.CONNECT_ERROR, namespace) + _json(payload)


def encode_disconnect(namespace: str) -> str:
    return _prefix(SocketType.DISCONNECT, namespace)


def encode_event(namespace: str, event: str, *args: Any, ack_id: int | None = None) -> str:
    ack = "" if ack_id is None else str(ack_id)
    return _prefix(SocketType.EVENT, namespace) + ack + _json([event, *args])


def encode_event_raw(namespace: str, event: str, payload_json: str) -> str:
    """An EVENT with one argument already encoded as JSON (fan-out encodes each payload once)."""
    return _prefix(SocketType.EVENT, namespace) + "[" + _json(event) + "," + payload_json + "]"


def encode_ack(namespace: str, ack_id: int, args: list[Any]) -> str:
    return _prefix(SocketType.ACK, namespace) + str(ack_id) + _json(args)
