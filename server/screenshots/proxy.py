"""The filtering forward proxy of one render: the only way its Chromium context reaches the network.

Every request the page makes (the document, each subresource, each redirect, fetches, websockets,
preconnects) arrives here: plain ``http`` as an absolute-URI request, ``https`` and ``wss`` as a
``CONNECT`` tunnel. Chromium resolves no host names itself when it uses a proxy: this proxy
resolves each host, checks every address with the :class:`~server.screenshots.guard.AddressPolicy`
and connects to an address it checked, so DNS rebinding gains nothing. A refused request gets a
``403`` carrying ``X-Parley-Refused`` and is recorded with its reason; nothing is sent to the
refused address. It also counts the bytes received for the render and cuts every connection once
the page passes its size limit.

One proxy per render (a listener on a free loopback port, closed with the render) makes the
accounting exact: what it refused and downloaded belongs to that render alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from server.screenshots.guard import (
    AddressPolicy,
    AddressRefused,
    Resolver,
    checked_addresses,
    system_resolver,
)

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 32_768
HEAD_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5.0
CHUNK = 65_536
REFUSED_HEADER = "x-parley-refused"
_HOP_HEADERS = frozenset({"proxy-connection", "proxy-authorization", "connection", "keep-alive"})


@dataclass(slots=True)
class Refusal:
    target: str
    reason: str


@dataclass(slots=True)
class ProxyStats:
    requests: int = 0
    bytes_received: int = 0
    over_limit: bool = False
    refused: list[Refusal] = field(default_factory=list)


class RenderProxy:
    def __init__(
        self, policy: AddressPolicy, *, max_bytes: int, resolver: Resolver = system_resolver
    ) -> None:
        self._policy = policy
        self._max_bytes = max_bytes
        self._resolver = resolver
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.stats = ProxyStats()
        self.over_limit = asyncio.Event()
        """Set once the render has received more than its byte limit (every connection is cut)."""

    async def start(self) -> str:
        """Listen on a free loopback port; returns the proxy's URL for Chromium."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    def _track(self, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._track(client_writer)
        try:
            await self._one_exchange(client_reader, client_writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            client_writer.close()
            self._writers.discard(client_writer)

    async def _one_exchange(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        head = await asyncio.wait_for(client_reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_SECONDS)
        request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, version = request_line.split(" ", 2)
        self.stats.requests += 1
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            port = int(port_text)
            described = f"https://{target}"
            forward: bytes | None = None
        else:
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                await self._refuse(client_writer, target, "only http and https requests are made")
                return
            host, port = parts.hostname, parts.port or 80
            described = target
            path = parts.path or "/"
            if parts.query:
                path += "?" + parts.query
            headers = [
                line for line in header_lines if line.partition(":")[0].strip().lower() not in _HOP_HEADERS
            ]
            forward = "\r\n".join(
                [f"{method} {path} {version}", *headers, "Connection: close", "", ""]
            ).encode("latin-1")
        try:
            addresses = await checked_addresses(host.strip("[]"), port, self._policy, self._resolver)
        except AddressRefused as refusal:
            await self._refuse(client_writer, described, refusal.message)
            return
        upstream = await self._connect([str(address) for address in addresses], port)
        if upstream is None:
            client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await client_writer.drain()
            return
        upstream_reader, upstream_writer = upstream
        self._track(upstream_writer)
        try:
            if forward is None:
                client_writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await client_writer.drain()
            else:
                upstream_writer.write(forward)
                await upstream_writer.drain()
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer, count=False),
                self._pipe(upstream_reader, client_writer, count=True),
            )
        finally:
            upstream_writer.close()
            self._writers.discard(upstream_writer)

    async def _connect(
        self, addresses: list[str], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for address in addresses:
            with contextlib.suppress(OSError, TimeoutError):
                return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_SECONDS)
        return None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        try:
            while chunk := await reader.read(CHUNK):
                if count:
                    self.stats.bytes_received += len(chunk)
                    if self.stats.bytes_received > self._max_bytes:
                        self.stats.over_limit = True
                        self.over_limit.set()
                        await self.close()
                        return
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, target: str, reason: str) -> None:
        self.stats.refused.append(Refusal(target=target[:300], reason=reason))
        log.info("screenshot render refused %s: %s", target[:300], reason)
        body = reason.encode()
        safe_reason = reason.encode("ascii", "replace").decode().replace("\r", " ").replace("\n", " ")
        writer.write(
            f"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
            f"{REFUSED_HEADER}: {safe_reason}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
