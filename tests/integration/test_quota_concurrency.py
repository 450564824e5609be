"""A quota limit set with `validate_usage` and a create charging the quota at the same
moment, on PostgreSQL (where they can overlap; SQLite runs one writer at a time): the
update waits for the charge's row lock and then refuses, because its own UPDATE checks
usage (kumo.server.services.identity.quotas). A read-then-write check would have set the
limit under the usage the charge committed meanwhile."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from sqlalchemy.orm import Session

from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.identity.v1 import resources_pb2 as ipb
from kumo.server.quota import charge
from tests.conftest import make_config
from tests.support.cloud import ADMIN_PASSWORD, Stubs, rpc_error, sign_in
from tests.support.postgres import PostgresServer
from tests.support.server import ServerThread

NAME = "projects/admin/quota"


@pytest.fixture
def pg_api(postgres: PostgresServer) -> Iterator[ServerThread]:
    server = ServerThread(make_config(postgres.create_database()))
    try:
        yield server
    finally:
        server.stop()


def _networks(admin: Stubs) -> tuple[int, int]:
    quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name=NAME))
    (found,) = [(q.limit, q.in_use) for q in quota.limits if q.resource == "networks"]
    return found


def test_a_validated_limit_waits_for_a_concurrent_charge_and_refuses(pg_api: ServerThread) -> None:
    channel = grpc.insecure_channel(pg_api.address)
    admin = Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))
    limit, in_use = _networks(admin)
    update = iapi.UpdateQuotaRequest(
        quota=ipb.Quota(name=NAME, limits=[ipb.QuotaLimit(resource="networks", limit=in_use)]),
        validate_usage=True,
    )
    engine = pg_api.server.runtime.db.engine
    with ThreadPoolExecutor(1) as pool:
        with Session(engine) as held, held.begin():
            charge(held, "admin", {"networks": 1})  # a create's charge, not committed yet
            racing = pool.submit(rpc_error, lambda: admin.identity.UpdateQuota(update))
            time.sleep(1.0)
            assert not racing.done(), "the update did not wait for the charge's row"
        code, status = racing.result(timeout=30)
    assert code == grpc.StatusCode.FAILED_PRECONDITION, status
    assert _networks(admin) == (limit, in_use + 1)
    # Unvalidated, the same limit is set (an operator's choice: creates then stop).
    update.validate_usage = False
    admin.identity.UpdateQuota(update)
    assert _networks(admin) == (in_use, in_use + 1)
    channel.close()
