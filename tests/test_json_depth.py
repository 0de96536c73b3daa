"""The nesting check itself: exact at the limit, blind to brackets inside strings, no recursion."""

from __future__ import annotations

import pytest

from server.json_depth import MAX_JSON_DEPTH, TooDeep, check_json_depth, json_depth_exceeds


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_exactly_the_limit_passes_and_one_more_is_refused() -> None:
    assert not json_depth_exceeds(nested(MAX_JSON_DEPTH))
    assert json_depth_exceeds(nested(MAX_JSON_DEPTH + 1))
    assert json_depth_exceeds('{"a":' * 40 + "1" + "}" * 40)


def test_brackets_inside_strings_do_not_count() -> None:
    text = '{"body": "' + "[{" * 5000 + '", "escaped": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'
    assert not json_depth_exceeds(text)
    assert not json_depth_exceeds(text.encode())


def test_many_shallow_brackets_are_fine() -> None:
    assert not json_depth_exceeds("[" + ",".join(["[[1]]"] * 10_000) + "]")


def test_a_hundred_thousand_levels_are_refused_without_recursion() -> None:
    with pytest.raises(TooDeep):
        check_json_depth(nested(100_000).encode())
