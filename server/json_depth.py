"""A nesting limit for JSON that arrives from outside, checked before any decoder recurses.

msgspec (like every recursive JSON decoder) descends one C stack frame per ``[`` or ``{`` and
stops at the interpreter's recursion limit with a ``RecursionError``: a 2 KB body nested 1,000
levels deep turned into a 500. No request or socket frame of ours needs more than a few levels,
so :func:`check_json_depth` refuses anything deeper than :data:`MAX_JSON_DEPTH` from the raw
text, without recursion, and both transports call it before decoding (the REST request class
in ``server/api/json_body.py`` and ``server/realtime/protocol.py``).
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted (our deepest payload uses four)."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class TooDeep(ValueError):
    """The JSON text nests arrays and objects deeper than allowed."""


def json_depth_exceeds(text: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests deeper than ``limit``; decides without parsing or recursion.

    Brackets inside strings do not count. A text with at most ``limit`` opening brackets cannot
    be too deep, which settles almost every real body with two C-level counts.
    """
    raw = text.encode() if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def check_json_depth(text: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`TooDeep` if ``text`` nests deeper than ``limit``."""
    if json_depth_exceeds(text, limit):
        raise TooDeep(f"JSON nested deeper than {limit} levels")
