"""Block storage across a kill -9 of kumo-api: volume creates (and deletes) in flight when
the process dies end after a restart, and every Kumo-named RBD image in the pool is
accounted by a row, every row's image exists, and the quota usage equals the rows.

A real `kumo-api` process (SQLite) with the session's Ceph cluster as its RBD backend; its
volume creates run one at a time (operations concurrency 1) so that many are queued or
running when the SIGKILL lands.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.longrunning import operations_pb2

from kumo.drivers.storage.rbd import RbdDriver
from kumo.identity.v1 import identity_service_pb2 as iapi
from kumo.server.config import default_quota
from kumo.storage.v1 import resources_pb2 as spb
from kumo.storage.v1 import storage_service_pb2 as sapi
from tests.support.ceph import CephCluster
from tests.support.cloud import ADMIN_PASSWORD, Stubs, sign_in, unique
from tests.support.process import ApiProcess
from tests.support.storage import make_type, storage
from tests.support.topology import make_site

pytestmark = pytest.mark.slow
WAIT_SECONDS = 120


@pytest.fixture
def kumo(ceph: CephCluster, tmp_path: Path) -> Iterator[ApiProcess]:
    process = ApiProcess(
        {
            "KUMO_DATA_DIR": str(tmp_path / "data"),
            "KUMO_DATABASE__URL": f"sqlite:///{tmp_path / 'kumo.db'}",
            "KUMO_BOOTSTRAP__ADMIN_PASSWORD": ADMIN_PASSWORD,
            "KUMO_AUTH__SCRYPT_LOG2_N": "10",
            "KUMO_OPERATIONS__LEASE_SECONDS": "2",
            "KUMO_OPERATIONS__POLL_SECONDS": "0.5",
            "KUMO_STORAGE__RBD__CONF": str(ceph.conf),
            "KUMO_STORAGE__RBD__USER": ceph.user,
            "KUMO_STORAGE__RBD__KEYRING": str(ceph.user_keyring),
            "KUMO_QUOTA_DEFAULTS": json.dumps({**default_quota(), "volumes": -1}),
        }
    )
    try:
        yield process
    finally:
        process.close()


@contextlib.contextmanager
def signed_in(process: ApiProcess) -> Iterator[Stubs]:
    with grpc.insecure_channel(process.address) as channel:
        yield Stubs(channel, sign_in(channel, "admin", ADMIN_PASSWORD, "admin"))


def test_creates_and_deletes_interrupted_by_kill_9_leave_no_unaccounted_image(
    kumo: ApiProcess, ceph: CephCluster
) -> None:
    pool = unique("kumo-crash")
    ceph.create_pool(pool)
    inspect = RbdDriver(conf=str(ceph.conf), user="admin")
    kumo.start(KUMO_OPERATIONS__CONCURRENCY="1")
    with signed_in(kumo) as admin:
        volume_type = make_type(admin, spb.BACKEND_RBD, pool)
        parent = f"projects/admin/zones/{make_site(admin).zone}"
        service = storage(admin)
        operations = [
            service.CreateVolume(
                sapi.CreateVolumeRequest(
                    parent=parent,
                    volume_id=f"v{i}",
                    volume=spb.Volume(volume_type=volume_type, size_gib=1),
                )
            ).name
            for i in range(40)
        ]
        # Kill as soon as some images exist in Ceph, with the rest still queued or running.
        deadline = time.monotonic() + 30
        while len(inspect.list_volumes(pool)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    made_at_kill = len(inspect.list_volumes(pool))
    kumo.kill()
    assert 0 < made_at_kill < 40, made_at_kill

    kumo.start()
    with signed_in(kumo) as admin:
        service = storage(admin)
        for name in operations:
            done = admin.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name, timeout={"seconds": WAIT_SECONDS})
            )
            assert done.done, name
        volumes = service.ListVolumes(sapi.ListVolumesRequest(parent=parent, page_size=100))
        by_object = {f"kumo-vol-{v.uid}": v for v in volumes.volumes}
        assert len(by_object) == 40
        assert all(v.state == spb.Volume.STATE_AVAILABLE for v in volumes.volumes), [
            (v.name, v.state, v.state_message) for v in volumes.volumes
        ]
        assert set(inspect.list_volumes(pool)) == set(by_object)

        # Now deletes, killed mid-way too.
        kumo_ops = [
            service.DeleteVolume(sapi.DeleteVolumeRequest(name=v.name)).name
            for v in volumes.volumes
        ]
    kumo.kill()
    kumo.start()
    with signed_in(kumo) as admin:
        for name in kumo_ops:
            done = admin.operations.WaitOperation(
                operations_pb2.WaitOperationRequest(name=name, timeout={"seconds": WAIT_SECONDS})
            )
            assert done.done and not done.HasField("error"), done
        left = storage(admin).ListVolumes(sapi.ListVolumesRequest(parent=parent))
        assert list(left.volumes) == []
        quota = admin.identity.GetQuota(iapi.GetQuotaRequest(name="projects/admin/quota"))
        usage = {limit.resource: limit.in_use for limit in quota.limits}
        assert (usage["volumes"], usage["gigabytes"]) == (0, 0)
    assert inspect.list_volumes(pool) == []
    inspect.close()
