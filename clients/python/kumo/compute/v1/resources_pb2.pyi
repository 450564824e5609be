import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from kumo.type.v1 import condition_pb2 as _condition_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Flavor(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "vcpus", "memory_mib", "disk_gib", "labels", "create_time", "update_time", "etag")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    labels: _containers.ScalarMap[str, str]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class KeyPair(_message.Message):
    __slots__ = ("name", "uid", "public_key", "private_key", "fingerprint", "create_time", "labels", "etag", "display_name")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    public_key: str
    private_key: str
    fingerprint: str
    create_time: _timestamp_pb2.Timestamp
    labels: _containers.ScalarMap[str, str]
    etag: str
    display_name: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., public_key: _Optional[str] = ..., private_key: _Optional[str] = ..., fingerprint: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., etag: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ServerGroup(_message.Message):
    __slots__ = ("name", "uid", "policy", "members", "create_time")
    class Policy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        POLICY_UNSPECIFIED: _ClassVar[ServerGroup.Policy]
        POLICY_AFFINITY: _ClassVar[ServerGroup.Policy]
        POLICY_ANTI_AFFINITY: _ClassVar[ServerGroup.Policy]
        POLICY_SOFT_AFFINITY: _ClassVar[ServerGroup.Policy]
        POLICY_SOFT_ANTI_AFFINITY: _ClassVar[ServerGroup.Policy]
    POLICY_UNSPECIFIED: ServerGroup.Policy
    POLICY_AFFINITY: ServerGroup.Policy
    POLICY_ANTI_AFFINITY: ServerGroup.Policy
    POLICY_SOFT_AFFINITY: ServerGroup.Policy
    POLICY_SOFT_ANTI_AFFINITY: ServerGroup.Policy
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    policy: ServerGroup.Policy
    members: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., policy: _Optional[_Union[ServerGroup.Policy, str]] = ..., members: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("name", "uid", "display_name", "labels", "flavor", "image", "hostname", "key_pairs", "server_group", "pool", "requested_host", "user_data", "power_intent", "generation", "state", "status_message", "host", "vcpus", "memory_mib", "disk_gib", "conditions", "observed_generation", "create_time", "update_time", "etag", "network_interfaces", "boot_volume", "paused", "locked", "locked_reason", "migration_host", "new_boot_volume", "delete_boot_volume", "attached_volumes", "volumes_at_boot", "tags")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Instance.State]
        STATE_PROVISIONING: _ClassVar[Instance.State]
        STATE_RUNNING: _ClassVar[Instance.State]
        STATE_STOPPED: _ClassVar[Instance.State]
        STATE_SUSPENDED: _ClassVar[Instance.State]
        STATE_REBOOTING: _ClassVar[Instance.State]
        STATE_RESIZED: _ClassVar[Instance.State]
        STATE_DELETING: _ClassVar[Instance.State]
        STATE_ERROR: _ClassVar[Instance.State]
        STATE_DELETED: _ClassVar[Instance.State]
    STATE_UNSPECIFIED: Instance.State
    STATE_PROVISIONING: Instance.State
    STATE_RUNNING: Instance.State
    STATE_STOPPED: Instance.State
    STATE_SUSPENDED: Instance.State
    STATE_REBOOTING: Instance.State
    STATE_RESIZED: Instance.State
    STATE_DELETING: Instance.State
    STATE_ERROR: Instance.State
    STATE_DELETED: Instance.State
    class PowerIntent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        POWER_INTENT_UNSPECIFIED: _ClassVar[Instance.PowerIntent]
        POWER_INTENT_RUNNING: _ClassVar[Instance.PowerIntent]
        POWER_INTENT_STOPPED: _ClassVar[Instance.PowerIntent]
        POWER_INTENT_SUSPENDED: _ClassVar[Instance.PowerIntent]
    POWER_INTENT_UNSPECIFIED: Instance.PowerIntent
    POWER_INTENT_RUNNING: Instance.PowerIntent
    POWER_INTENT_STOPPED: Instance.PowerIntent
    POWER_INTENT_SUSPENDED: Instance.PowerIntent
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PAIRS_FIELD_NUMBER: _ClassVar[int]
    SERVER_GROUP_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_HOST_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    POWER_INTENT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    DISK_GIB_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    NETWORK_INTERFACES_FIELD_NUMBER: _ClassVar[int]
    BOOT_VOLUME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    LOCKED_REASON_FIELD_NUMBER: _ClassVar[int]
    MIGRATION_HOST_FIELD_NUMBER: _ClassVar[int]
    NEW_BOOT_VOLUME_FIELD_NUMBER: _ClassVar[int]
    DELETE_BOOT_VOLUME_FIELD_NUMBER: _ClassVar[int]
    ATTACHED_VOLUMES_FIELD_NUMBER: _ClassVar[int]
    VOLUMES_AT_BOOT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    labels: _containers.ScalarMap[str, str]
    flavor: str
    image: str
    hostname: str
    key_pairs: _containers.RepeatedScalarFieldContainer[str]
    server_group: str
    pool: str
    requested_host: str
    user_data: bytes
    power_intent: Instance.PowerIntent
    generation: int
    state: Instance.State
    status_message: str
    host: str
    vcpus: int
    memory_mib: int
    disk_gib: int
    conditions: _containers.RepeatedCompositeFieldContainer[_condition_pb2.Condition]
    observed_generation: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    network_interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterface]
    boot_volume: str
    paused: bool
    locked: bool
    locked_reason: str
    migration_host: str
    new_boot_volume: NewBootVolume
    delete_boot_volume: bool
    attached_volumes: _containers.RepeatedCompositeFieldContainer[AttachedVolume]
    volumes_at_boot: _containers.RepeatedCompositeFieldContainer[VolumeAtBoot]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., flavor: _Optional[str] = ..., image: _Optional[str] = ..., hostname: _Optional[str] = ..., key_pairs: _Optional[_Iterable[str]] = ..., server_group: _Optional[str] = ..., pool: _Optional[str] = ..., requested_host: _Optional[str] = ..., user_data: _Optional[bytes] = ..., power_intent: _Optional[_Union[Instance.PowerIntent, str]] = ..., generation: _Optional[int] = ..., state: _Optional[_Union[Instance.State, str]] = ..., status_message: _Optional[str] = ..., host: _Optional[str] = ..., vcpus: _Optional[int] = ..., memory_mib: _Optional[int] = ..., disk_gib: _Optional[int] = ..., conditions: _Optional[_Iterable[_Union[_condition_pb2.Condition, _Mapping]]] = ..., observed_generation: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., network_interfaces: _Optional[_Iterable[_Union[NetworkInterface, _Mapping]]] = ..., boot_volume: _Optional[str] = ..., paused: _Optional[bool] = ..., locked: _Optional[bool] = ..., locked_reason: _Optional[str] = ..., migration_host: _Optional[str] = ..., new_boot_volume: _Optional[_Union[NewBootVolume, _Mapping]] = ..., delete_boot_volume: _Optional[bool] = ..., attached_volumes: _Optional[_Iterable[_Union[AttachedVolume, _Mapping]]] = ..., volumes_at_boot: _Optional[_Iterable[_Union[VolumeAtBoot, _Mapping]]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class AttachedVolume(_message.Message):
    __slots__ = ("volume", "uid", "delete_with_instance", "device")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DELETE_WITH_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    volume: str
    uid: str
    delete_with_instance: bool
    device: str
    def __init__(self, volume: _Optional[str] = ..., uid: _Optional[str] = ..., delete_with_instance: _Optional[bool] = ..., device: _Optional[str] = ...) -> None: ...

class VolumeAtBoot(_message.Message):
    __slots__ = ("volume", "size_gib", "volume_type", "source_snapshot", "delete_with_instance", "device")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELETE_WITH_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    volume: str
    size_gib: int
    volume_type: str
    source_snapshot: str
    delete_with_instance: bool
    device: str
    def __init__(self, volume: _Optional[str] = ..., size_gib: _Optional[int] = ..., volume_type: _Optional[str] = ..., source_snapshot: _Optional[str] = ..., delete_with_instance: _Optional[bool] = ..., device: _Optional[str] = ...) -> None: ...

class NewBootVolume(_message.Message):
    __slots__ = ("size_gib", "volume_type", "source_snapshot")
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    size_gib: int
    volume_type: str
    source_snapshot: str
    def __init__(self, size_gib: _Optional[int] = ..., volume_type: _Optional[str] = ..., source_snapshot: _Optional[str] = ...) -> None: ...

class NetworkInterface(_message.Message):
    __slots__ = ("network", "subnet", "ip_address", "security_groups", "port", "mac_address", "ip_addresses", "floating_ip_addresses")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    FLOATING_IP_ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    network: str
    subnet: str
    ip_address: str
    security_groups: _containers.RepeatedScalarFieldContainer[str]
    port: str
    mac_address: str
    ip_addresses: _containers.RepeatedScalarFieldContainer[str]
    floating_ip_addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, network: _Optional[str] = ..., subnet: _Optional[str] = ..., ip_address: _Optional[str] = ..., security_groups: _Optional[_Iterable[str]] = ..., port: _Optional[str] = ..., mac_address: _Optional[str] = ..., ip_addresses: _Optional[_Iterable[str]] = ..., floating_ip_addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class MigrationOptions(_message.Message):
    __slots__ = ("max_downtime_ms", "bandwidth_mibps", "auto_converge", "post_copy", "block_migration", "timeout_seconds", "mode")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[MigrationOptions.Mode]
        MODE_LIVE: _ClassVar[MigrationOptions.Mode]
        MODE_COLD: _ClassVar[MigrationOptions.Mode]
    MODE_UNSPECIFIED: MigrationOptions.Mode
    MODE_LIVE: MigrationOptions.Mode
    MODE_COLD: MigrationOptions.Mode
    class BlockMigration(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BLOCK_MIGRATION_UNSPECIFIED: _ClassVar[MigrationOptions.BlockMigration]
        BLOCK_MIGRATION_ENABLED: _ClassVar[MigrationOptions.BlockMigration]
        BLOCK_MIGRATION_DISABLED: _ClassVar[MigrationOptions.BlockMigration]
    BLOCK_MIGRATION_UNSPECIFIED: MigrationOptions.BlockMigration
    BLOCK_MIGRATION_ENABLED: MigrationOptions.BlockMigration
    BLOCK_MIGRATION_DISABLED: MigrationOptions.BlockMigration
    MAX_DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_MIBPS_FIELD_NUMBER: _ClassVar[int]
    AUTO_CONVERGE_FIELD_NUMBER: _ClassVar[int]
    POST_COPY_FIELD_NUMBER: _ClassVar[int]
    BLOCK_MIGRATION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    max_downtime_ms: int
    bandwidth_mibps: int
    auto_converge: bool
    post_copy: bool
    block_migration: MigrationOptions.BlockMigration
    timeout_seconds: int
    mode: MigrationOptions.Mode
    def __init__(self, max_downtime_ms: _Optional[int] = ..., bandwidth_mibps: _Optional[int] = ..., auto_converge: _Optional[bool] = ..., post_copy: _Optional[bool] = ..., block_migration: _Optional[_Union[MigrationOptions.BlockMigration, str]] = ..., timeout_seconds: _Optional[int] = ..., mode: _Optional[_Union[MigrationOptions.Mode, str]] = ...) -> None: ...

class InstanceDeletion(_message.Message):
    __slots__ = ("previous_state", "previous_power_intent")
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_POWER_INTENT_FIELD_NUMBER: _ClassVar[int]
    previous_state: Instance.State
    previous_power_intent: Instance.PowerIntent
    def __init__(self, previous_state: _Optional[_Union[Instance.State, str]] = ..., previous_power_intent: _Optional[_Union[Instance.PowerIntent, str]] = ...) -> None: ...

class MigrationProgress(_message.Message):
    __slots__ = ("source_host", "destination_host", "elapsed_ms", "memory_total_bytes", "memory_processed_bytes", "memory_remaining_bytes", "dirty_rate_bytes_per_second", "disk_total_bytes", "disk_processed_bytes", "iteration", "downtime_ms", "total_ms")
    SOURCE_HOST_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_HOST_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_REMAINING_BYTES_FIELD_NUMBER: _ClassVar[int]
    DIRTY_RATE_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DISK_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    DISK_PROCESSED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ITERATION_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    source_host: str
    destination_host: str
    elapsed_ms: int
    memory_total_bytes: int
    memory_processed_bytes: int
    memory_remaining_bytes: int
    dirty_rate_bytes_per_second: int
    disk_total_bytes: int
    disk_processed_bytes: int
    iteration: int
    downtime_ms: float
    total_ms: float
    def __init__(self, source_host: _Optional[str] = ..., destination_host: _Optional[str] = ..., elapsed_ms: _Optional[int] = ..., memory_total_bytes: _Optional[int] = ..., memory_processed_bytes: _Optional[int] = ..., memory_remaining_bytes: _Optional[int] = ..., dirty_rate_bytes_per_second: _Optional[int] = ..., disk_total_bytes: _Optional[int] = ..., disk_processed_bytes: _Optional[int] = ..., iteration: _Optional[int] = ..., downtime_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...
