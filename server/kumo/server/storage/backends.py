"""The volume drivers of this API process, one per backend, built lazily from configuration.

The API drives storage centrally (Ceph pools and images have one control point): operation
handlers ask `Backends.driver(backend)` for the driver of a volume type's backend. qcow2 is
always available (local files under `config.volumes_dir`); RBD only when `storage.rbd` is
configured; the fake only when `storage.fake` is set (scale tests).
"""

from __future__ import annotations

import threading

from kumo.drivers.storage.base import VolumeDriver
from kumo.drivers.storage.loader import load_volume_driver
from kumo.server.config import Config
from kumo.server.errors import FailedPrecondition
from kumo.storage.v1 import resources_pb2 as pb

#: Driver entry-point names by proto Backend value.
DRIVER_NAMES: dict[int, str] = {
    pb.BACKEND_QCOW2: "qcow2",
    pb.BACKEND_RBD: "rbd",
    pb.BACKEND_FAKE: "fake",
}


class Backends:
    """Drivers by backend (proto enum value)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._drivers: dict[int, VolumeDriver] = {}
        self._lock = threading.Lock()

    def configured(self, backend: int) -> bool:
        """Whether volumes of this backend can be made here."""
        return (
            backend in self._drivers
            or backend == pb.BACKEND_QCOW2
            or (backend == pb.BACKEND_RBD and self.config.storage.rbd is not None)
            or (backend == pb.BACKEND_FAKE and self.config.storage.fake)
        )

    def driver(self, backend: int) -> VolumeDriver:
        """The driver of `backend`; FailedPrecondition if it is not configured here."""
        with self._lock:
            if backend not in self._drivers:
                self._drivers[backend] = self._load(backend)
            return self._drivers[backend]

    def _load(self, backend: int) -> VolumeDriver:
        rbd = self.config.storage.rbd
        if backend == pb.BACKEND_QCOW2:
            return load_volume_driver("qcow2", root=str(self.config.volumes_dir))
        if backend == pb.BACKEND_RBD and rbd is not None:
            return load_volume_driver("rbd", conf=rbd.conf, user=rbd.user, keyring=rbd.keyring)
        if backend == pb.BACKEND_FAKE and self.config.storage.fake:
            return load_volume_driver("fake")
        name = DRIVER_NAMES.get(backend, str(backend))
        raise FailedPrecondition(
            f"the {name} storage backend is not configured on this cloud",
            type="BACKEND_NOT_CONFIGURED",
            subject=name,
        )
