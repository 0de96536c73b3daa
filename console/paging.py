"""Pages of a list: ``?page=N`` (1-based), ``PER_PAGE`` rows, one extra row fetched to know if more follow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from litestar import Request

Search = Callable[..., Awaitable[list[Any]]]
"""``search(query_or_None, limit=, offset=)``: a read-side query of a list page."""

T = TypeVar("T")
PER_PAGE = 50
MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    per_page: int
    has_next: bool = False
    query: str = ""
    """Other query parameters to keep in the page links (a search)."""

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def fetch(self) -> int:
        return self.per_page + 1

    def link(self, page: int) -> str:
        params = {"page": str(page)}
        if self.query:
            params["q"] = self.query
        return "?" + urlencode(params)

    def cut(self, rows: list[T]) -> tuple[list[T], Pager]:
        """The rows of this page, and the pager knowing whether a next page exists."""
        pager = Pager(self.page, self.per_page, len(rows) > self.per_page, self.query)
        return rows[: self.per_page], pager


def pager_of(request: Request[Any, Any, Any], per_page: int = PER_PAGE) -> Pager:
    raw = request.query_params.get("page", "1")
    page = int(raw) if raw.isdigit() else 1
    query = request.query_params.get("q", "")[:100]
    return Pager(page=min(max(page, 1), MAX_PAGE), per_page=per_page, query=query)


async def search_page(request: Request[Any, Any, Any], search: Search) -> tuple[list[Any], dict[str, Any]]:
    """One page of a searchable list (``?q=``, ``?page=``): its rows, and ``pager`` and ``q`` for
    the template (``forms.search_form`` and ``forms.pager``)."""
    pager = pager_of(request)
    rows, pager = pager.cut(await search(pager.query or None, limit=pager.fetch, offset=pager.offset))
    return rows, {"pager": pager, "q": pager.query}
