"""List paging (AIP-158) with keyset cursors.

A page token is signed, names the last row returned by its sort key and id,
and is bound to the other arguments of the list call, so it grants nothing
and cannot be replayed against a different query.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from kumo.server.api.signing import Signer
from kumo.server.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class Order:
    """A sort column (plus the id tie-breaker) and direction."""

    field: str
    descending: bool = False


def parse_order_by(text: str, allowed: Sequence[str]) -> Order:
    """Parses `field` or `field desc`; the default is the first allowed field, ascending."""
    words = text.split()
    if not words:
        return Order(allowed[0])
    if (
        words[0] not in allowed
        or len(words) > 2
        or (len(words) == 2 and words[1] not in ("asc", "desc"))
    ):
        raise InvalidArgument.field(
            "order_by", f"use one of {', '.join(allowed)}, optionally followed by ' desc'"
        )
    return Order(words[0], descending=len(words) == 2 and words[1] == "desc")


def _encode(value: Any) -> Any:
    return {"t": value.isoformat()} if isinstance(value, datetime) else value


def _decode(value: Any) -> Any:
    return datetime.fromisoformat(value["t"]) if isinstance(value, dict) else value


@dataclass
class Page:
    """One page of rows and the token for the next."""

    rows: list[Any]
    next_page_token: str


class Pager:
    """Reads one page of a query, validating `page_size` and `page_token`."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def page(
        self,
        session: Session | Connection,
        query: Select[Any],
        *,
        key: InstrumentedAttribute[Any],
        id_column: InstrumentedAttribute[Any],
        order: Order,
        page_size: int,
        page_token: str,
        binding: str,
        plain: bool = False,
    ) -> Page:
        """Runs `query` ordered by (`key`, `id_column`) from the token's position.

        `binding` is any text that identifies the query's other arguments (parent,
        filter, order): a token minted for another binding is INVALID_ARGUMENT.
        `plain`: the query selects a table (or columns), and the page holds Core rows (no ORM
        objects); `session` may then be a Connection.
        """
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must not be negative")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        bound = hashlib.sha256(binding.encode()).hexdigest()[:16]
        if page_token:
            try:
                cursor = self._signer.loads(page_token)
                if cursor["b"] != bound:
                    raise ValueError("token of another query")
                after = (_decode(cursor["k"]), cursor["i"])
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidArgument.field(
                    "page_token", "not a token from the previous page of this same query"
                ) from exc
            position = tuple_(key, id_column)
            query = query.where(position < after if order.descending else position > after)
        ordering = (key.desc(), id_column.desc()) if order.descending else (key, id_column)
        query = query.order_by(*ordering).limit(size + 1)
        # all(): one fetchall, not a fetch per row
        rows: list[Any] = list((session.execute(query) if plain else session.scalars(query)).all())
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            last = rows[-1]
            token = self._signer.dumps(
                {
                    "b": bound,
                    "k": _encode(getattr(last, key.key)),
                    "i": getattr(last, id_column.key),
                }
            )
        return Page(rows, token)
