"""Form input to the services' own types, and the services' errors back to the fields.

A form posts strings. :func:`convert` turns them into the same msgspec struct the REST API
decodes (``CannedReplyCreate``, ``ProjectUpdate``, ...), so the console accepts exactly what the
API accepts; its errors and the services' :class:`DomainError` both become
``{field: message}`` for the inline errors next to each field.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from server.errors import DomainError, Invalid

T = TypeVar("T")
_PATH = re.compile(r"at `\$\.([a-z_]+)")


def convert(values: dict[str, Any], into: type[T]) -> T:
    """``values`` as ``into``, or :class:`Invalid` naming the field that is wrong."""
    try:
        return msgspec.convert(values, into, strict=False)
    except msgspec.ValidationError as error:
        text = str(error)
        match = _PATH.search(text)
        field = match.group(1) if match else "form"
        message = text.split(" - at ")[0]
        message = _plain(message)
        label = field.replace("_", " ").capitalize()
        raise Invalid(f"{label} {message}.", fields={field: message.capitalize()}) from None


_LENGTH = re.compile(r"Expected `(str|array)` of length (>=|<=) (\d+)")


def _plain(message: str) -> str:
    """msgspec's message in words for a person ("must not be empty", "at most 200 characters")."""
    match = _LENGTH.search(message)
    if match:
        kind, bound, number = match.groups()
        unit = "characters" if kind == "str" else "entries"
        if bound == ">=":
            return "must not be empty" if number == "1" else f"needs at least {number} {unit}"
        return f"must be at most {number} {unit}"
    if "regex" in message:
        return "is not in the expected format"
    return message.replace("Expected", "expected")


def field_errors(error: DomainError, default_field: str = "form") -> dict[str, str]:
    """The error per field; an error without fields is shown at the top of the form."""
    fields = dict(error.fields)
    fields.setdefault("form", error.message)
    if not error.fields and default_field != "form":
        fields[default_field] = error.message
    return fields


async def form_data(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The posted fields (one value each; repeated names keep the last), without the CSRF token."""
    form = await request.form()
    return {key: value for key, value in form.items() if key != "_csrf_token" and isinstance(value, str)}


def checkbox(values: dict[str, Any], name: str) -> bool:
    return values.get(name) in ("on", "true", "1")
