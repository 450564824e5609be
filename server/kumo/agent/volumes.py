"""How this host opens the volumes its guests have attached.

An assignment lists each attached volume as `kind` + `path` (kumo.agent.v1.VolumeAttachment).
A `file` volume is opened as the local qcow2 file it names. An `rbd` volume (`pool/image`) is
opened through the Ceph cluster this host is configured for (`[volumes]` in the agent
configuration: ceph.conf, cephx user and keyring), as Ceph deployments configure their
compute hosts: the monitors and the key come from the host, never from the API.
"""

from __future__ import annotations

import threading
from typing import Any

from kumo.agent.config import VolumesConfig
from kumo.drivers.errors import StorageUnavailable
from kumo.drivers.storage.base import DiskSource, IoLimits, VolumeDisk, VolumeDriver


class VolumeSources:
    """Turns VolumeAttachment messages into VolumeDisks (blocking: call from a worker)."""

    def __init__(self, config: VolumesConfig) -> None:
        self.config = config
        self._rbd: VolumeDriver | None = None
        self._lock = threading.Lock()

    def _rbd_driver(self) -> VolumeDriver:
        with self._lock:
            if self._rbd is None:
                if not self.config.rbd_conf:
                    raise StorageUnavailable(reason="this host has no Ceph configuration")
                from kumo.drivers.storage.rbd import RbdDriver

                self._rbd = RbdDriver(
                    conf=self.config.rbd_conf,
                    user=self.config.rbd_user,
                    keyring=self.config.rbd_keyring,
                )
            return self._rbd

    def disk(self, attachment: Any) -> VolumeDisk:
        """The disk for one VolumeAttachment. Raises StorageUnavailable (no Ceph here),
        VolumeNotFound, ValueError (unknown kind)."""
        if attachment.kind == "file":
            source = DiskSource(kind="file", path=attachment.path, format="qcow2")
        elif attachment.kind == "rbd":
            pool, _, name = attachment.path.partition("/")
            source = self._rbd_driver().disk_source(pool, name)
        else:
            raise ValueError(f"unknown volume kind {attachment.kind!r}")
        return VolumeDisk(
            serial=attachment.serial,
            source=source,
            read_only=attachment.read_only,
            limits=IoLimits(
                total_iops_sec=attachment.max_iops,
                read_bytes_sec=attachment.max_read_bytes_per_second,
                write_bytes_sec=attachment.max_write_bytes_per_second,
            ),
        )
