"""The pure codec: every packet kind parsed and encoded, every malformation refused."""

from __future__ import annotations

import msgspec
import pytest

from server.json_depth import MAX_JSON_DEPTH
from server.realtime import protocol
from server.realtime.protocol import EngineType, MalformedPacket, SocketPacket, SocketType


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", SocketPacket(SocketType.CONNECT, "/")),
        ('0/visitor,{"token":"t"}', SocketPacket(SocketType.CONNECT, "/visitor", {"token": "t"})),
        ("0/agent,", SocketPacket(SocketType.CONNECT, "/agent")),
        ("0/agent", SocketPacket(SocketType.CONNECT, "/agent")),
        ("1/visitor,", SocketPacket(SocketType.DISCONNECT, "/visitor")),
        ('2["hello",1,{"a":[true]}]', SocketPacket(SocketType.EVENT, "/", ["hello", 1, {"a": [True]}])),
        ('2/agent,12["sync",{}]', SocketPacket(SocketType.EVENT, "/agent", ["sync", {}], 12)),
        ('212["x"]', SocketPacket(SocketType.EVENT, "/", ["x"], 12)),
        ('3/visitor,5["ok"]', SocketPacket(SocketType.ACK, "/visitor", ["ok"], 5)),
        ("30[]", SocketPacket(SocketType.ACK, "/", [], 0)),
    ],
)
def test_parse(text: str, expected: SocketPacket) -> None:
    assert protocol.parse_socket_packet(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "7",
        "x",
        "4/visitor,{}",  # CONNECT_ERROR is server-only
        "0[1]",  # CONNECT payload must be an object
        "05{}",  # CONNECT with an ack id
        "1/visitor,{}",
        '2{"a":1}',  # EVENT must be a list
        "2[]",
        "2[1]",
        '2["x"',  # truncated JSON
        '2["x",NaN]',
        "3[]",  # ACK without id
        '31{"a":1}',
        "2" + "9" * 16 + '["x"]',  # absurd ack id
        "0/" + "n" * 100 + ",{}",
        "2" + "[" * 5000 + "]" * 5000,
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(MalformedPacket):
        protocol.parse_socket_packet(text)


def test_binary_packets_wait_for_their_attachments_then_read_whole() -> None:
    head = protocol.parse_socket_packet(
        '52-/agent,7["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]'
    )
    assert (head.type, head.namespace, head.ack_id, head.attachments) == (
        SocketType.BINARY_EVENT,
        "/agent",
        7,
        2,
    )
    whole = protocol.attach(head, [b"\x00first", b"second"])
    assert whole == SocketPacket(SocketType.EVENT, "/agent", ["up", b"second", b"\x00first"], 7)
    ack = protocol.attach(protocol.parse_socket_packet('61-3[{"_placeholder":true,"num":0}]'), [b"x"])
    assert ack == SocketPacket(SocketType.ACK, "/", [b"x"], 3)
    # And back: bytes in an event or ack leave as placeholders plus binary frames.
    assert protocol.encode_with_attachments(SocketType.EVENT, "/", ["e", b"ab", {"k": [b"c"]}]) == (
        '452-["e",{"_placeholder":true,"num":0},{"k":[{"_placeholder":true,"num":1}]}]',
        [b"ab", b"c"],
    )
    assert protocol.encode_with_attachments(SocketType.ACK, "/agent", [b"z"], ack_id=9) == (
        '461-/agent,9[{"_placeholder":true,"num":0}]',
        [b"z"],
    )
    assert protocol.encode_with_attachments(SocketType.ACK, "/", [1], ack_id=2) == ("432[1]", [])


@pytest.mark.parametrize(
    ("text", "buffers"),
    [
        ('51["x",{"_placeholder":true,"num":0}]', None),  # no count
        ('50-["x"]', None),  # zero attachments
        ('599-["x"]', None),  # too many
        ('51-{"x":1}', None),  # not an event list
        ('51-["x",{"_placeholder":true,"num":1}]', [b"a"]),  # placeholder out of range
        ('52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]', [b"a", b"b"]),  # one twice
        ('51-["x"]', [b"a"]),  # an attachment nothing refers to
        ('51-["x",{"_placeholder":true,"num":"0"}]', [b"a"]),
    ],
)
def test_malformed_binary_packets(text: str, buffers: list[bytes] | None) -> None:
    with pytest.raises(MalformedPacket):
        protocol.attach(protocol.parse_socket_packet(text), buffers or [])


def test_engine_types() -> None:
    assert [protocol.engine_type(str(i)) for i in range(7)] == list(EngineType)
    for bad in ("", "7", "a"):
        with pytest.raises(MalformedPacket):
            protocol.engine_type(bad)


def test_encoders_round_trip() -> None:
    opened = protocol.encode_open("abc", ping_interval_ms=25000, ping_timeout_ms=20000, max_payload=65536)
    assert opened[0] == "0"
    assert msgspec.json.decode(opened[1:]) == {
        "sid": "abc",
        "upgrades": [],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 65536,
    }
    assert protocol.encode_connect("/agent", "s1") == '40/agent,{"sid":"s1"}'
    assert protocol.encode_connect("/", "s1") == '40{"sid":"s1"}'
    assert (
        protocol.encode_connect_error("/visitor", "token expired", {"code": "token_expired"})
        == '44/visitor,{"message":"token expired","data":{"code":"token_expired"}}'
    )
    assert protocol.encode_connect_error("/", "nope") == '44{"message":"nope"}'
    assert protocol.encode_disconnect("/agent") == "41/agent,"
    assert protocol.encode_event("/agent", "e", {"a": 1}, ack_id=3) == '42/agent,3["e",{"a":1}]'
    assert (
        protocol.encode_event_raw("/visitor", "message.created", '{"x":1}')
        == '42/visitor,["message.created",{"x":1}]'
    )
    assert protocol.encode_ack("/visitor", 9, [{"ok": True}]) == '43/visitor,9[{"ok":true}]'
    # What the encoders write, the parser reads back whole: type, namespace, payload and ack id.
    cases = [
        (protocol.encode_event("/agent", "e", "ü", ack_id=1), SocketType.EVENT, "/agent", ["e", "ü"], 1),
        (
            protocol.encode_event("/", "e", {"n": [1, None]}),
            SocketType.EVENT,
            "/",
            ["e", {"n": [1, None]}],
            None,
        ),
        (protocol.encode_ack("/visitor", 4, ["x", 2]), SocketType.ACK, "/visitor", ["x", 2], 4),
        (protocol.encode_ack("/", 123456789, [{}]), SocketType.ACK, "/", [{}], 123456789),
    ]
    for encoded, kind, namespace, data, ack_id in cases:
        assert encoded[0] == "4"
        parsed = protocol.parse_socket_packet(encoded[1:])
        assert (parsed.type, parsed.namespace, parsed.data, parsed.ack_id) == (
            kind,
            namespace,
            data,
            ack_id,
        ), encoded


def test_event_accessors() -> None:
    packet = protocol.parse_socket_packet('2/agent,["typing",{"conversation_id":1}]')
    assert packet.event == "typing" and packet.args == [{"conversation_id": 1}]


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1_000, 100_000])
def test_deeply_nested_payloads_are_refused_before_decoding(depth: int) -> None:
    text = '2["x",' + "[" * depth + "]" * depth + "]"
    with pytest.raises(MalformedPacket, match="nested deeper"):
        protocol.parse_socket_packet(text)


def test_nesting_up_to_the_limit_parses() -> None:
    depth = MAX_JSON_DEPTH - 1  # the event list itself is one level
    packet = protocol.parse_socket_packet('2["x",' + "[" * depth + "]" * depth + "]")
    assert packet.event == "x"
