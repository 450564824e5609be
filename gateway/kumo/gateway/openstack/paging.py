"""OpenStack's `limit`/`marker` paging over Kumo's opaque page tokens.

The `next` link of a page carries the Kumo page token as its `marker`. A `marker` that is a
resource id (a UUID, as clients send when they page by themselves, and as openstacksdk does
once more after the last page) is honoured too: the items after it, found by reading the
listing from the start (so bounded by `MAX_SCAN` items). With no `limit`, every page is read.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import grpc
from starlette.requests import Request

from kumo.gateway.errors import RpcFailure
from kumo.gateway.openstack.common import int_param

T = TypeVar("T")
# Fetches one page: (page token, page size) -> (items, next page token).
Fetch = Callable[[str, int], Awaitable[tuple[list[T], str]]]
PAGE = 1000
MAX_SCAN = 10 * PAGE


async def every(
    backend: Any, method: Any, request: Any, plural: str, token: str
) -> AsyncIterator[Any]:
    """Every item (`plural`: the answer's repeated field) of a List call, page after page
    (`PAGE` a page unless the request says)."""
    request.page_size = request.page_size or PAGE
    while True:
        answer = await backend.call(method, request, token)
        for item in getattr(answer, plural):
            yield item
        request.page_token = answer.next_page_token
        if not request.page_token:
            return


@dataclass
class Page(Generic[T]):
    """The items of an answer and the marker of the next page ("" on the last)."""

    items: list[T]
    next_marker: str

    def next_href(self, request: Request, path: str) -> str:
        """The link to the next page: the request's own query with the new marker."""
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        return f"{path}?{urlencode([*query, ('marker', self.next_marker)])}"


def _is_id(marker: str) -> bool:
    try:
        uuid.UUID(marker)
    except ValueError:
        return False
    return True


async def _everything(fetch: Fetch[T], token: str = "") -> list[T]:
    items: list[T] = []
    while True:
        page, token = await fetch(token, PAGE)
        items.extend(page)
        if not token or len(items) >= MAX_SCAN:
            return items


async def page(request: Request, fetch: Fetch[T], id_of: Callable[[T], Any]) -> Page[T]:
    """The page a request asks for with `limit` and `marker`."""
    limit = int_param(request, "limit")
    marker = request.query_params.get("marker", "")
    if marker and _is_id(marker):
        everything = await _everything(fetch)
        ids = [str(id_of(item)) for item in everything]
        if marker not in ids:
            raise RpcFailure.of(grpc.StatusCode.INVALID_ARGUMENT, f"marker [{marker}] not found")
        rest = everything[ids.index(marker) + 1 :]
        if limit is None or len(rest) <= limit:
            return Page(rest, "")
        return Page(rest[:limit], str(id_of(rest[limit - 1])))
    if limit is None:
        return Page(await _everything(fetch, marker), "")
    items, token = await fetch(marker, min(max(limit, 1), PAGE))
    return Page(items[:limit] if limit else [], token if limit else "")
