"""Tables of the platform itself: operations, idempotency records, server secrets."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.server.db.base import Base, utcnow


class OperationRow(Base):
    """A long-running operation.

    `state` is one of the OperationState values. A row is claimed by a
    controller through `lease_owner`/`lease_expire_time`; an expired lease means
    its controller died and another may resume the operation. `target_uid` is
    the target's uid when the operation creates it (empty otherwise). `payload` is the
    handler's own serialized input, `response`/`error` are the serialized
    response message and `google.rpc.Status`, `detail` a serialized
    `google.protobuf.Any` the handler reports progress in (metadata's `detail`).
    `method` is the RPC that started it where the kind does not say (e.g. StopInstance for
    an InstanceAction), `request_id` and `requester` (a user id) the call that started it,
    or the call whose work made it; empty when Kumo started it on its own.
    """

    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_claim", "done", "lease_expire_time"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(127))
    target: Mapped[str] = mapped_column(String(255))
    target_uid: Mapped[str] = mapped_column(String(36), default="")
    related: Mapped[str] = mapped_column(String(255), default="")
    method: Mapped[str] = mapped_column(String(127), default="")
    request_id: Mapped[str] = mapped_column(String(128), default="")
    requester: Mapped[str] = mapped_column(String(63), default="")
    payload: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    state: Mapped[int] = mapped_column(SmallInteger, default=0)
    done: Mapped[bool] = mapped_column(default=False)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    status_message: Mapped[str] = mapped_column(String(255), default="")
    progress_percent: Mapped[int] = mapped_column(default=0)
    attempts: Mapped[int] = mapped_column(default=0)
    response: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    response_type: Mapped[str] = mapped_column(String(255), default="")
    error: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    detail: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    lease_owner: Mapped[str | None] = mapped_column(String(36), default=None)
    lease_expire_time: Mapped[datetime | None] = mapped_column(default=None)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    end_time: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyRow(Base):
    """The first result of a mutation sent with a `request_id` (AIP-155).

    Keyed by caller and request id; `request_hash` detects a reuse of the id for
    a different request.
    """

    __tablename__ = "idempotency"

    user_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    method: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    create_time: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ServerSecretRow(Base):
    """A random key shared by every API replica (token signing, key encryption)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
