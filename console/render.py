"""Pages that are also their fragments: one template per page, named blocks rendered alone.

A console page template extends ``console/layout.html`` and fills its ``content`` block (the inbox
and every other page do the same). A normal request gets the whole page. An htmx request (a
boosted link or form, ``hx-get``) gets only the blocks that change: by default the page's
``<title>``, the navigation (``nav``, swapped out of band) and ``main``; a view that refreshes one
part names that part's block instead (``blocks=["member_list"]``).

Why Jinja's own block API rather than ``jinja2-fragments``: that library renders a block only
when the page's own file defines it, but ``nav`` and ``main`` live in the layout. Rendering the
layout's block function with the page's context (which carries the page's overrides) is all
that is needed: a dozen lines here, on Litestar's :class:`HTMXTemplate` for the htmx headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from jinja2 import Environment
from jinja2 import Template as JinjaTemplate
from litestar import Request
from litestar.background_tasks import BackgroundTask, BackgroundTasks
from litestar.datastructures import Cookie
from litestar.enums import MediaType
from litestar.plugins.htmx import HTMXTemplate
from litestar.response.base import ASGIResponse
from litestar.types import TypeEncodersMap

from console.flash import read_flashes, spent_flash_cookie

LAYOUTS = ("console/layout.html", "base.html")
"""Where a block not defined by the page itself is looked up, innermost first."""
NAVIGATION_BLOCKS = ("title", "nav", "main")


def configure_templates(engine: Any) -> None:
    """Make the console's macros global (``forms.field(...)``): a block rendered alone never runs
    the page's top-level ``{% import %}``, so templates must not rely on one."""
    environment: Environment = engine.engine
    environment.globals["forms"] = environment.get_template("console/_forms.html").module


def is_fragment_request(request: Request[Any, Any, Any]) -> bool:
    """An htmx request that swaps part of a page (a history restore needs the whole page)."""
    headers = request.headers
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"


def render_blocks(
    environment: Environment, template: JinjaTemplate, names: Sequence[str], context: Mapping[str, Any]
) -> str:
    """``names`` of ``template`` (or of its layouts), as a normal render would produce them.

    The context gets the layouts' blocks appended after the page's own, exactly as Jinja does when
    it renders an ``{% extends %}`` chain, so a layout block sees the page's overrides and ``super()``.
    """
    chain = [template, *(environment.get_template(layout) for layout in LAYOUTS)]
    page_context = template.new_context(dict(context))
    for parent in chain[1:]:
        for name, block in parent.blocks.items():
            page_context.blocks.setdefault(name, []).append(block)
    parts: list[str] = []
    for name in names:
        if name not in page_context.blocks:
            raise LookupError(f"no block {name!r} in {template.name} or its layouts")
        text = environment.concat(page_context.blocks[name][0](page_context))
        parts.append(f"<title>{text}</title>" if name == "title" else text)
    return "".join(parts)


class Page(HTMXTemplate):
    """A template response that renders only ``blocks`` when given, else the whole page."""

    def __init__(self, template_name: str, *, blocks: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(template_name=template_name, **kwargs)
        self.blocks = tuple(blocks)

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: TypeEncodersMap | None = None,
    ) -> ASGIResponse:
        if not self.blocks:
            return super().to_asgi_response(
                app,
                request,
                background=background,
                cookies=cookies,
                encoded_headers=encoded_headers,
                headers=headers,
                is_head_response=is_head_response,
                media_type=media_type,
                status_code=status_code,
                type_encoders=type_encoders,
            )
        engine = request.app.template_engine
        assert engine is not None and self.template_name is not None
        environment: Environment = engine.engine
        template: JinjaTemplate = engine.get_template(self.template_name)
        body = render_blocks(environment, template, self.blocks, self.create_template_context(request))
        return ASGIResponse(
            background=self.background or background,
            body=body.encode(self.encoding),
            cookies=[*self.cookies, *(cookies or [])],
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**(headers or {}), **self.headers},
            is_head_response=is_head_response,
            media_type=MediaType.HTML,
            status_code=self.status_code or status_code,
        )


def render(
    request: Request[Any, Any, Any],
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    blocks: Sequence[str] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Page:
    """The page for a normal request; for an htmx one, ``blocks`` (default: the navigation blocks).

    The context always has ``viewer`` (who is signed in, their projects, the current project)
    and ``flashes`` (messages left by the previous action, shown once).
    """
    flashes, had_cookie = read_flashes(request)
    full_context = {
        "viewer": request.state.get("viewer"),
        "flashes": flashes,
        "errors": {},
        "values": {},
        **(context or {}),
    }
    chosen = (blocks or NAVIGATION_BLOCKS) if is_fragment_request(request) else ()
    return Page(
        template_name,
        blocks=chosen,
        context=full_context,
        status_code=status_code,
        headers=headers,
        cookies=[spent_flash_cookie()] if had_cookie else None,
    )
