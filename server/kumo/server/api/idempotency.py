"""Request ids on mutations (AIP-155): a repeat returns the first result.

The first successful result of a mutation sent with a `request_id` is stored
in the same transaction as the mutation itself, keyed by caller and id. A
repeat with the same request gets that result; the same id with a different
request is INVALID_ARGUMENT. Failed calls store nothing and may be retried.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import TypeVar, cast

from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.server.auth.principal import optional_principal
from kumo.server.db.engine import Database
from kumo.server.db.models import IdempotencyRow
from kumo.server.errors import InvalidArgument

M = TypeVar("M", bound=Message)


def _check_request_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidArgument.field("request_id", "must be a UUID") from exc


async def idempotent(
    db: Database,
    method: str,
    request: Message,
    response_type: type[M],
    fn: Callable[[Session], M],
) -> M:
    """Runs `fn` in one transaction, or returns the stored first result of this request id."""
    raw_id = getattr(request, "request_id", "")
    if not raw_id:
        return await db.run(fn)
    request_id = _check_request_id(raw_id)
    principal = optional_principal()
    caller = principal.user_id if principal else ""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()

    def once(session: Session) -> M:
        seen = session.get(IdempotencyRow, (caller, request_id))
        if seen is not None:
            if seen.method != method or seen.request_hash != digest:
                raise InvalidArgument.field(
                    "request_id", "was already used for a different request"
                )
            return cast(M, response_type.FromString(seen.response))
        result = fn(session)
        session.add(
            IdempotencyRow(
                user_id=caller,
                request_id=request_id,
                method=method,
                request_hash=digest,
                response=result.SerializeToString(),
            )
        )
        session.flush()
        return result

    try:
        return await db.run(once)
    except IntegrityError:  # a concurrent repeat won the race: return its result
        return await db.run(once)
