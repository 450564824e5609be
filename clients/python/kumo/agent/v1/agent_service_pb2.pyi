import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kumo.compute.v1 import resources_pb2 as _resources_pb2
from kumo.image.v1 import resources_pb2 as _resources_pb2_1
from kumo.topology.v1 import resources_pb2 as _resources_pb2_1_1
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterHostRequest(_message.Message):
    __slots__ = ("host", "hypervisor_description")
    HOST_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    host: _resources_pb2_1_1.Host
    hypervisor_description: str
    def __init__(self, host: _Optional[_Union[_resources_pb2_1_1.Host, _Mapping]] = ..., hypervisor_description: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("host", "send_time", "running_instances")
    HOST_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    RUNNING_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    host: str
    send_time: _timestamp_pb2.Timestamp
    running_instances: int
    def __init__(self, host: _Optional[str] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., running_instances: _Optional[int] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("timeout_seconds",)
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: int
    def __init__(self, timeout_seconds: _Optional[int] = ...) -> None: ...

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ("host",)
    HOST_FIELD_NUMBER: _ClassVar[int]
    host: str
    def __init__(self, host: _Optional[str] = ...) -> None: ...

class InstanceAssignment(_message.Message):
    __slots__ = ("instance", "instance_uid", "generation", "deleted", "power_intent", "vcpus", "memory_mib", "disk_gib", "image", "image_sha256", "image_format", "hostname", "ssh_authorized_keys", "user_data", "reboot_serial", "reboot_hard", "rebuild_serial", "stop_timeout_seconds", "snapshot_serial", "snapshot_image", "resize_serial", "migration", "volumes", "nics", "root_volume")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    POWER_INTENT_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    SSH_AUTHORIZED_KEYS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    REBOOT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REBOOT_HARD_FIELD_NUMBER: _ClassVar[int]
    REBUILD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    STOP_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_IMAGE_FIELD_NUMBER: _ClassVar[int]
    RESIZE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    ROOT_VOLUME_FIELD_NUMBER: _ClassVar[int]
    instance: str
    instance_uid: str
    generation: int
    deleted: bool
    power_intent: _resources_pb2.Instance.PowerIntent
    vcpus: int
    memory_mib: int
    disk_gib: int
    image: str
    image_sha256: str
    image_format: _resources_pb2_1.DiskFormat
    hostname: str
    ssh_authorized_keys: _containers.RepeatedScalarFieldContainer[str]
    user_data: bytes
    reboot_serial: int
    reboot_hard: bool
    rebuild_serial: int
    stop_timeout_seconds: int
    snapshot_serial: int
    snapshot_image: str
    resize_serial: int
    migration: MigrationAssignment
    volumes: _containers.RepeatedCompositeFieldContainer[VolumeAttachment]
    nics: _containers.RepeatedCompositeFieldContainer[NicAssignment]
    root_volume: VolumeAttachment
    def __init__(self, instance: _Optional[str] = ..., instance_uid: _Optional[str] = ..., generation: _Optional[int] = ..., deleted: _Optional[bool] = ..., power_intent: _Optional[_Union[_resources_pb2.Instance.PowerIntent, str]] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., image: _Optional[str] = ..., image_sha256: _Optional[str] = ..., image_format: _Optional[_Union[_resources_pb2_1.DiskFormat, str]] = ..., hostname: _Optional[str] = ..., ssh_authorized_keys: _Optional[_Iterable[str]] = ..., user_data: _Optional[bytes] = ..., reboot_serial: _Optional[int] = ..., reboot_hard: _Optional[bool] = ..., rebuild_serial: _Optional[int] = ..., stop_timeout_seconds: _Optional[int] = ..., snapshot_serial: _Optional[int] = ..., snapshot_image: _Optional[str] = ..., resize_serial: _Optional[int] = ..., migration: _Optional[_Union[MigrationAssignment, _Mapping]] = ..., volumes: _Optional[_Iterable[_Union[VolumeAttachment, _Mapping]]] = ..., nics: _Optional[_Iterable[_Union[NicAssignment, _Mapping]]] = ..., root_volume: _Optional[_Union[VolumeAttachment, _Mapping]] = ...) -> None: ...

class NicAssignment(_message.Message):
    __slots__ = ("port_uid", "mac_address", "tap")
    PORT_UID_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TAP_FIELD_NUMBER: _ClassVar[int]
    port_uid: str
    mac_address: str
    tap: str
    def __init__(self, port_uid: _Optional[str] = ..., mac_address: _Optional[str] = ..., tap: _Optional[str] = ...) -> None: ...

class MigrationAssignment(_message.Message):
    __slots__ = ("serial", "role", "target", "options", "abort")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROLE_UNSPECIFIED: _ClassVar[MigrationAssignment.Role]
        ROLE_SOURCE: _ClassVar[MigrationAssignment.Role]
        ROLE_DESTINATION: _ClassVar[MigrationAssignment.Role]
    ROLE_UNSPECIFIED: MigrationAssignment.Role
    ROLE_SOURCE: MigrationAssignment.Role
    ROLE_DESTINATION: MigrationAssignment.Role
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    serial: int
    role: MigrationAssignment.Role
    target: str
    options: _resources_pb2.MigrationOptions
    abort: bool
    def __init__(self, serial: _Optional[int] = ..., role: _Optional[_Union[MigrationAssignment.Role, str]] = ..., target: _Optional[str] = ..., options: _Optional[_Union[_resources_pb2.MigrationOptions, _Mapping]] = ..., abort: _Optional[bool] = ...) -> None: ...

class VolumeAttachment(_message.Message):
    __slots__ = ("serial", "kind", "path", "read_only", "max_iops", "max_read_bytes_per_second", "max_write_bytes_per_second", "size_bytes")
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    MAX_IOPS_FIELD_NUMBER: _ClassVar[int]
    MAX_READ_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_WRITE_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    serial: str
    kind: str
    path: str
    read_only: bool
    max_iops: int
    max_read_bytes_per_second: int
    max_write_bytes_per_second: int
    size_bytes: int
    def __init__(self, serial: _Optional[str] = ..., kind: _Optional[str] = ..., path: _Optional[str] = ..., read_only: _Optional[bool] = ..., max_iops: _Optional[int] = ..., max_read_bytes_per_second: _Optional[int] = ..., max_write_bytes_per_second: _Optional[int] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class WatchAssignmentsResponse(_message.Message):
    __slots__ = ("full_resync", "assignments")
    FULL_RESYNC_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    full_resync: bool
    assignments: _containers.RepeatedCompositeFieldContainer[InstanceAssignment]
    def __init__(self, full_resync: _Optional[bool] = ..., assignments: _Optional[_Iterable[_Union[InstanceAssignment, _Mapping]]] = ...) -> None: ...

class ReportInstanceStatusRequest(_message.Message):
    __slots__ = ("instance_uid", "host", "observed_generation", "state", "message", "observed_reboot_serial", "observed_rebuild_serial", "removed", "observed_snapshot_serial", "observed_resize_serial")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_REBOOT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_REBUILD_SERIAL_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_SNAPSHOT_SERIAL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_RESIZE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    host: str
    observed_generation: int
    state: _resources_pb2.Instance.State
    message: str
    observed_reboot_serial: int
    observed_rebuild_serial: int
    removed: bool
    observed_snapshot_serial: int
    observed_resize_serial: int
    def __init__(self, instance_uid: _Optional[str] = ..., host: _Optional[str] = ..., observed_generation: _Optional[int] = ..., state: _Optional[_Union[_resources_pb2.Instance.State, str]] = ..., message: _Optional[str] = ..., observed_reboot_serial: _Optional[int] = ..., observed_rebuild_serial: _Optional[int] = ..., removed: _Optional[bool] = ..., observed_snapshot_serial: _Optional[int] = ..., observed_resize_serial: _Optional[int] = ...) -> None: ...

class ReportInstanceStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReportMigrationStatusRequest(_message.Message):
    __slots__ = ("instance_uid", "host", "serial", "phase", "target", "progress", "message")
    class Phase(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PHASE_UNSPECIFIED: _ClassVar[ReportMigrationStatusRequest.Phase]
        PHASE_PREPARED: _ClassVar[ReportMigrationStatusRequest.Phase]
        PHASE_RUNNING: _ClassVar[ReportMigrationStatusRequest.Phase]
        PHASE_COMPLETED: _ClassVar[ReportMigrationStatusRequest.Phase]
        PHASE_FAILED: _ClassVar[ReportMigrationStatusRequest.Phase]
    PHASE_UNSPECIFIED: ReportMigrationStatusRequest.Phase
    PHASE_PREPARED: ReportMigrationStatusRequest.Phase
    PHASE_RUNNING: ReportMigrationStatusRequest.Phase
    PHASE_COMPLETED: ReportMigrationStatusRequest.Phase
    PHASE_FAILED: ReportMigrationStatusRequest.Phase
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    host: str
    serial: int
    phase: ReportMigrationStatusRequest.Phase
    target: str
    progress: _resources_pb2.MigrationProgress
    message: str
    def __init__(self, instance_uid: _Optional[str] = ..., host: _Optional[str] = ..., serial: _Optional[int] = ..., phase: _Optional[_Union[ReportMigrationStatusRequest.Phase, str]] = ..., target: _Optional[str] = ..., progress: _Optional[_Union[_resources_pb2.MigrationProgress, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class ReportMigrationStatusResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AppendSerialPortOutputRequest(_message.Message):
    __slots__ = ("instance_uid", "offset", "data")
    INSTANCE_UID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    instance_uid: str
    offset: int
    data: bytes
    def __init__(self, instance_uid: _Optional[str] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class AppendSerialPortOutputResponse(_message.Message):
    __slots__ = ("next_offset",)
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    next_offset: int
    def __init__(self, next_offset: _Optional[int] = ...) -> None: ...
