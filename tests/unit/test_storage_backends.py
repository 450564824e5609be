"""Which volume drivers the API builds: qcow2 always, the fake only when configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from kumo.drivers.storage.fake import FakeVolumeDriver
from kumo.drivers.storage.qcow2 import Qcow2Driver
from kumo.server.errors import FailedPrecondition
from kumo.server.storage.backends import Backends
from kumo.storage.v1 import resources_pb2 as pb
from tests.conftest import make_config


def test_fake_backend_only_when_configured(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kumo.db"
    plain = Backends(make_config(url))
    assert isinstance(plain.driver(pb.BACKEND_QCOW2), Qcow2Driver)
    assert not plain.configured(pb.BACKEND_FAKE) and not plain.configured(pb.BACKEND_RBD)
    with pytest.raises(FailedPrecondition):
        plain.driver(pb.BACKEND_FAKE)
    scale = Backends(make_config(url, storage={"fake": True}))
    assert scale.configured(pb.BACKEND_FAKE)
    assert isinstance(scale.driver(pb.BACKEND_FAKE), FakeVolumeDriver)
    assert scale.driver(pb.BACKEND_FAKE) is scale.driver(pb.BACKEND_FAKE)  # built once


def test_root_disks_in_ceph_need_a_cluster_and_default_to_its_pool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/kumo.db"
    assert make_config(url).storage.rbd_root_pool is None  # local overlays, as `kumo up`
    with pytest.raises(ValidationError, match=r"needs a storage\.rbd cluster"):
        make_config(url, storage={"root_disks": "rbd"})
    rbd = {"conf": "/etc/ceph/ceph.conf", "pool": "volumes"}
    assert make_config(url, storage={"rbd": rbd, "root_disks": "rbd"}).storage.rbd_root_pool == (
        "volumes"
    )
    own = make_config(url, storage={"rbd": rbd, "root_disks": "rbd", "root_disk_pool": "vms"})
    assert own.storage.rbd_root_pool == "vms"
    assert make_config(url, storage={"rbd": rbd}).storage.rbd_root_pool is None
