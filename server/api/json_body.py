"""How every JSON request body is read: declared as JSON, shallow, and decoded strictly.

Litestar decodes a body to plain Python first and then converts it to the handler's ``data``
type with msgspec's lax rules (``"true"`` becomes ``True``, ``"3"`` becomes ``3``), and its
decoder recurses without limit (a deeply nested body was a ``RecursionError`` and a 500).
:class:`JSONRequest`, installed as the app's request class, replaces that one step for every
route at once:

1. the body must be declared ``application/json`` (or ``application/<x>+json``): anything else
   is ``415 unsupported_media_type`` (see ``docs/api.md``, "Requests");
2. nesting deeper than :data:`server.json_depth.MAX_JSON_DEPTH` is ``400 invalid`` before any
   decoder runs;
3. the body is decoded straight into the handler's ``data`` type with ``strict=True``: a wrong
   JSON type is ``400 invalid`` naming the field, never converted.

Litestar's own conversion then receives the already-typed value and passes it through.
"""

from __future__ import annotations

import re
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import Empty

from server.json_depth import MAX_JSON_DEPTH, json_depth_exceeds

_PATH = re.compile(r" - at `\$(.*)`$")
_data_types: WeakKeyDictionary[BaseRouteHandler, Any] = WeakKeyDictionary()


def is_json_media_type(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _data_type(handler: BaseRouteHandler) -> Any:
    """The annotation of the handler's ``data`` parameter (``Any`` if it has none)."""
    try:
        return _data_types[handler]
    except KeyError:
        parameter = handler.parsed_fn_signature.parameters.get("data")
        annotation = parameter.annotation if parameter is not None else Any
        _data_types[handler] = annotation
        return annotation


def invalid_body(error: msgspec.ValidationError | msgspec.DecodeError) -> ValidationException:
    """The 400 for a body msgspec refused, naming the field (``body`` for the whole document)."""
    text = str(error)
    match = _PATH.search(text)
    message = _PATH.sub("", text) or "invalid"
    key = "body"
    if isinstance(error, msgspec.ValidationError) and match and match.group(1):
        key = match.group(1).lstrip(".") or "body"
    elif isinstance(error, msgspec.DecodeError):
        message = "not valid JSON"
    return ValidationException("The request is not valid.", extra=[{"key": key, "message": message}])


def decode_json_body(body: bytes, data_type: Any) -> Any:
    """Decode a request body into ``data_type``: depth-checked, strict (see the module docstring)."""
    if json_depth_exceeds(body):
        raise ValidationException(
            "The request is not valid.",
            extra=[{"key": "body", "message": f"nested deeper than {MAX_JSON_DEPTH} levels"}],
        )
    try:
        return msgspec.json.decode(body, type=data_type, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise invalid_body(error) from None


class JSONRequest(Request[Any, Any, Any]):
    """The app's request class: :meth:`json` applies the rules of this module."""

    async def json(self) -> Any:
        if self._json is Empty:
            if (cached := self._connection_state.json) is not Empty:
                self._json = cached
            else:
                body = await self.body()
                if body and not is_json_media_type(self.headers.get("content-type", "")):
                    raise HTTPException(
                        "Send JSON bodies with 'Content-Type: application/json'.",
                        status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    )
                value = decode_json_body(body or b"null", _data_type(self.route_handler))
                self._json = self._connection_state.json = value
        return self._json
