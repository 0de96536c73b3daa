"""Every error code Parley sends is in one list, and the documentation lists exactly that list.

Issue #9: the server answered ``empty_body`` and ``body_too_long`` where docs/protocol.md said
``invalid``, and docs/api.md knew neither. Now:

1. :class:`server.errors.ErrorCode` is the code's list; no module spells a code as a string of
   its own (a ``code=`` argument, a ``{"code": ...}`` literal, an ``EventError``/``AuthError``/
   ``RenderFailed`` code, a class's ``code`` attribute, JSON text with a code): each names a member.
2. The error tables of docs/api.md (REST) and docs/protocol.md (socket) together list every
   member, and every code they list is a member: a new code fails until it is documented, and a
   documented code that no longer exists fails too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from server.errors import ErrorCode

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "server", ROOT / "console", ROOT / "tasks"]
CODE_CARRIERS = {"EventError", "AuthError", "RenderFailed"}
"""Exceptions whose first argument is a code."""

# The error tables of each document: the first column of each row holds the codes, in backticks.
DOCUMENTED_IN = {
    "docs/api.md": ["## Errors"],
    "docs/protocol.md": [
        "### `connect_error` codes",
        "### Event errors",
        "### HTTP answers of the gateway",
        "## When access changes",
    ],
}
CODE = re.compile(r"`([a-z][a-z_]*)`")


def _string_literals(node: ast.AST | None) -> list[ast.Constant]:
    """String constants that are the value itself (or a branch of it), not ones compared in a test."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node] if node.value else []  # "" is no code at all
    if isinstance(node, ast.IfExp):
        return _string_literals(node.body) + _string_literals(node.orelse)
    if isinstance(node, ast.Tuple):
        return [found for element in node.elts for found in _string_literals(element)]
    if isinstance(node, ast.BoolOp):
        return [found for value in node.values for found in _string_literals(value)]
    return []


def _named_code(target: ast.AST) -> bool:
    if isinstance(target, ast.Name | ast.Attribute):
        return (target.id if isinstance(target, ast.Name) else target.attr) == "code"
    if isinstance(target, ast.Tuple):
        return any(_named_code(element) for element in target.elts)
    return False


def literal_codes(source: str) -> list[tuple[int, str]]:
    """``(line, text)`` of every error code written as a string literal in ``source``."""
    found: list[ast.Constant] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            found += [
                literal
                for keyword in node.keywords
                if keyword.arg == "code"
                for literal in _string_literals(keyword.value)
            ]
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in CODE_CARRIERS and node.args:
                found += _string_literals(node.args[0])
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    found += _string_literals(value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_named_code(target) for target in targets):
                found += _string_literals(node.value)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.search(r'"code":\s*"[a-z_]+"', node.value)
        ):
            found.append(node)
    return [(literal.lineno, str(literal.value)) for literal in found]


def test_the_scan_finds_each_way_of_spelling_a_code() -> None:
    sample = """
raise Invalid("no", code="empty_body")
raise EventError("invalid_payload", "bad")
payload = {"code": "not_found", "message": "x"}
status, code = (403, "forbidden") if signed_in else (401, "unauthorized")
class Refused(Invalid):
    code = "address_not_allowed"
body = '{"code":"internal"}'
fine = {"code": ErrorCode.INTERNAL, "fields": {"cursor": "invalid"}}
code = ErrorCode.TOKEN_EXPIRED if str(error) == "token expired" else ErrorCode.INVALID_TOKEN
"""
    assert sorted(text for _, text in literal_codes(sample)) == sorted(
        [
            "empty_body",
            "invalid_payload",
            "not_found",
            "forbidden",
            "unauthorized",
            "address_not_allowed",
            '{"code":"internal"}',
        ]
    )


def test_no_module_spells_an_error_code_itself() -> None:
    offenders = []
    for directory in SOURCES:
        for path in sorted(directory.rglob("*.py")):
            if path == ROOT / "server" / "errors.py":
                continue
            for line, text in literal_codes(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert offenders == [], "name an ErrorCode member instead:\n" + "\n".join(offenders)


def documented_codes(document: str, headings: list[str]) -> dict[str, set[str]]:
    """Per heading, the codes in the first column of that section's table rows."""
    text = (ROOT / document).read_text()
    found: dict[str, set[str]] = {}
    for heading in headings:
        assert heading + "\n" in text, f"{document} has no section {heading!r}"
        section = text.split(heading + "\n", 1)[1]
        level = heading.split(" ", 1)[0]
        section = re.split(rf"^#{{1,{len(level)}}} ", section, maxsplit=1, flags=re.M)[0]
        codes: set[str] = set()
        lines = section.splitlines()
        for line, after in zip(lines, [*lines[1:], ""], strict=True):
            separator = set(after) <= set("|-: ") and after.startswith("|")
            if not line.startswith("|") or set(line) <= set("|-: ") or separator:
                continue  # not a row, a separator, or a header (the row above a separator)
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            codes |= set(CODE.findall(cells[0]))
        assert codes, f"{document}, {heading}: no table of codes"
        found[heading] = codes
    return found


def test_the_docs_list_every_code_and_only_codes_that_exist() -> None:
    documented: set[str] = set()
    for document, headings in DOCUMENTED_IN.items():
        for heading, codes in documented_codes(document, headings).items():
            stale = codes - set(ErrorCode)
            assert not stale, f"{document}, {heading} lists codes the server never sends: {sorted(stale)}"
            documented |= codes
    undocumented = set(ErrorCode) - documented
    assert not undocumented, f"codes missing from docs/api.md and docs/protocol.md: {sorted(undocumented)}"


def test_the_api_doc_lists_the_rest_codes_and_the_protocol_doc_the_socket_codes() -> None:
    rest = documented_codes("docs/api.md", ["## Errors"])["## Errors"]
    socket = set().union(*documented_codes("docs/protocol.md", DOCUMENTED_IN["docs/protocol.md"]).values())
    # What only the gateway sends is not in the REST table, and the reverse.
    assert {"invalid_payload", "missing_token", "unknown_event", "internal"} <= socket - rest
    assert {"csrf_failed", "payload_too_large", "internal_error", "bad_cursor"} <= rest - socket
    # The send service's codes reach both transports.
    assert {"empty_body", "body_too_long", "rate_limited", "unavailable", "not_found"} <= rest & socket
