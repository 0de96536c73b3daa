"""What the widget reports about a visitor's browser (``visitor:info``), and the user agent parsed.

The widget sends the raw ``navigator.userAgent``; the browser and operating system names are
derived here, on the server, so every client shows the same names and the rules live in one
place. The parser is a short ordered list of patterns for the browsers and systems that matter in
a support inbox; anything else reads as ``Other``. It never fails: a malformed agent string is
just unknown.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec

# Order matters: many browsers also claim to be Chrome and Safari, so the specific ones come first.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\b(?:Edg|EdgA|EdgiOS|Edge)/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Yandex", re.compile(r"\bYaBrowser/(\d+)")),
    ("Vivaldi", re.compile(r"\bVivaldi/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:Chrome|CriOS|Chromium)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
    ("Internet Explorer", re.compile(r"\b(?:MSIE |Trident/.*rv:)(\d+)")),
)
_SYSTEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iOS", re.compile(r"\b(?:iPhone|iPad|iPod).*? OS (\d+)[_\d]*")),
    ("Android", re.compile(r"\bAndroid (\d+)")),
    ("Windows", re.compile(r"\bWindows NT (\d+\.\d+)")),
    ("ChromeOS", re.compile(r"\bCrOS \S+ (\d+)")),
    ("macOS", re.compile(r"\bMac OS X (\d+)[_.](\d+)")),
    ("Linux", re.compile(r"\bLinux\b()")),
)
_WINDOWS_NAMES = {"10.0": "10/11", "6.3": "8.1", "6.2": "8", "6.1": "7", "6.0": "Vista", "5.1": "XP"}


class VisitorInfoIn(msgspec.Struct, forbid_unknown_fields=True):
    """The ``visitor:info`` payload the widget sends once per page load (docs/protocol.md)."""

    user_agent: Annotated[str, msgspec.Meta(max_length=512)] = ""
    language: Annotated[str, msgspec.Meta(max_length=35)] = ""
    """BCP 47 tag, ``navigator.language`` (e.g. ``de-CH``)."""
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = ""
    """IANA name from ``Intl.DateTimeFormat().resolvedOptions().timeZone`` (e.g. ``Europe/Zurich``)."""
    screen: Annotated[str, msgspec.Meta(max_length=32)] = ""
    """``<width>x<height>`` in CSS pixels."""


class VisitorDevice(msgspec.Struct, kw_only=True):
    """A visitor's device as the side panel shows it; stored in Redis (``Keys.visitor_device``)."""

    browser: str
    os: str
    language: str
    timezone: str
    screen: str
    user_agent: str
    at: float
    """Unix time it was reported."""


def _match(patterns: tuple[tuple[str, re.Pattern[str]], ...], user_agent: str) -> tuple[str, str]:
    for name, pattern in patterns:
        found = pattern.search(user_agent)
        if found:
            return name, ".".join(group for group in found.groups() if group)
    return "Other", ""


def parse_user_agent(user_agent: str) -> tuple[str, str]:
    """``(browser, os)`` names with their major version, e.g. ``("Firefox 128", "Windows 10/11")``."""
    if not user_agent:
        return "Unknown", "Unknown"
    browser, browser_version = _match(_BROWSERS, user_agent)
    system, system_version = _match(_SYSTEMS, user_agent)
    if system == "Windows":
        system_version = _WINDOWS_NAMES.get(system_version, system_version)
    return (
        f"{browser} {browser_version}".strip(),
        f"{system} {system_version}".strip(),
    )


def device_of(info: VisitorInfoIn, at: float) -> VisitorDevice:
    browser, system = parse_user_agent(info.user_agent)
    screen = info.screen if re.fullmatch(r"\d{1,5}x\d{1,5}", info.screen) else ""
    return VisitorDevice(
        browser=browser,
        os=system,
        language=info.language,
        timezone=info.timezone,
        screen=screen,
        user_agent=info.user_agent,
        at=at,
    )
