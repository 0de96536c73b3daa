"""The URL rules and the address guard, and the render proxy refusing on its own resolution."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from server.errors import Invalid
from server.screenshots.guard import AddressPolicy, AddressRefused, checked_addresses
from server.screenshots.proxy import REFUSED_HEADER, RenderProxy
from server.screenshots.urls import cache_digest, check_allowed, normalise_url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("HTTPS://Shop.Example:443/cart?b=2&a=1#top", "https://shop.example/cart?b=2&a=1"),
        ("http://shop.example", "http://shop.example/"),
        ("http://shop.example:8080/x", "http://shop.example:8080/x"),
        ("http://[::1]:8000/", "http://[::1]:8000/"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
    ],
)
def test_urls_are_normalised(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:text/html,<h1>x</h1>",
        "chrome://settings",
        "javascript:alert(1)",
        "/relative",
        "http://user:pw@shop.example/",
        "http://:80/",
        "http://shop.example:99999/",
        "ftp://shop.example/",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        normalise_url(url)
    assert refused.value.code == "url_not_allowed"


def test_the_origin_must_be_allowed_and_spellings_of_one_page_share_a_key() -> None:
    check_allowed("https://shop.example/cart", ["https://SHOP.example:443/"])
    check_allowed("https://any.example/", ["*"])
    with pytest.raises(Invalid) as refused:
        check_allowed("https://shop.example.evil/", ["https://shop.example"])
    assert refused.value.code == "origin_not_allowed"
    with pytest.raises(Invalid):
        check_allowed("http://shop.example/", ["https://shop.example"])  # the scheme is part of it
    same = normalise_url("HTTPS://shop.example:443/a#x")
    assert cache_digest(same, "desktop") == cache_digest(normalise_url("https://shop.example/a"), "desktop")
    assert cache_digest(same, "desktop") != cache_digest(same, "mobile")


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "public"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("0.0.0.0", "unicast"),
        ("224.0.0.1", "unicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
        ("2002:c0a8:0101::1", "private"),  # 6to4 of 192.168.1.1
        ("192.0.2.1", "address"),  # documentation range
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_only_public_addresses_pass(address: str, refused: str | None) -> None:
    reason = AddressPolicy().refusal(ipaddress.ip_address(address))
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason


def test_the_development_setting_lets_loopback_through_and_nothing_else() -> None:
    policy = AddressPolicy(allow_loopback=True)
    assert policy.refusal(ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal(ipaddress.ip_address("::1")) is None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1")) is not None
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) is not None


async def test_a_name_is_refused_when_any_of_its_addresses_is() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"mixed.example": ["93.184.215.14", "10.0.0.7"], "public.example": ["93.184.215.14"]}[host]

    with pytest.raises(AddressRefused, match=r"10\.0\.0\.7"):
        await checked_addresses("mixed.example", 443, AddressPolicy(), resolver)
    assert [str(a) for a in await checked_addresses("public.example", 443, AddressPolicy(), resolver)] == [
        "93.184.215.14"
    ]
    with pytest.raises(AddressRefused, match="does not resolve"):
        await checked_addresses("nowhere.invalid", 80, AddressPolicy())


async def _through_proxy(proxy_url: str, request: bytes) -> bytes:
    host, port = proxy_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return answer


async def test_the_proxy_resolves_for_itself_so_a_rebinding_name_gains_nothing() -> None:
    """web resolved ``rebind.example`` to a public address; when the browser asks, it says 127.0.0.1."""
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    proxy = RenderProxy(AddressPolicy(allow_loopback=False), max_bytes=100_000, resolver=rebinding)
    url = await proxy.start()
    try:
        plain = await _through_proxy(
            url, b"GET http://rebind.example/ HTTP/1.1\r\nHost: rebind.example\r\n\r\n"
        )
        tunnel = await _through_proxy(
            url, b"CONNECT rebind.example:443 HTTP/1.1\r\nHost: rebind.example\r\n\r\n"
        )
    finally:
        await proxy.close()
    for answer in (plain, tunnel):
        assert answer.startswith(b"HTTP/1.1 403 ")
        assert REFUSED_HEADER.encode() in answer.lower() and b"127.0.0.1" in answer
    assert asked == ["rebind.example", "rebind.example"]
    assert [refusal.target for refusal in proxy.stats.refused] == [
        "http://rebind.example/",
        "https://rebind.example:443",
    ]


async def test_the_proxy_refuses_loopback_without_the_development_setting_and_other_schemes() -> None:
    proxy = RenderProxy(AddressPolicy(), max_bytes=100_000)
    url = await proxy.start()
    try:
        loopback = await _through_proxy(url, b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: x\r\n\r\n")
        ftp = await _through_proxy(url, b"GET ftp://shop.example/ HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        await proxy.close()
    assert loopback.startswith(b"HTTP/1.1 403 ") and b"loopback" in loopback
    assert ftp.startswith(b"HTTP/1.1 403 ")
