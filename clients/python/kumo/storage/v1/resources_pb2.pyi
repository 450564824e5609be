import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_QCOW2: _ClassVar[Backend]
    BACKEND_RBD: _ClassVar[Backend]
    BACKEND_FAKE: _ClassVar[Backend]

class AttachMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTACH_MODE_UNSPECIFIED: _ClassVar[AttachMode]
    ATTACH_MODE_READ_WRITE: _ClassVar[AttachMode]
    ATTACH_MODE_READ_ONLY: _ClassVar[AttachMode]
BACKEND_UNSPECIFIED: Backend
BACKEND_QCOW2: Backend
BACKEND_RBD: Backend
BACKEND_FAKE: Backend
ATTACH_MODE_UNSPECIFIED: AttachMode
ATTACH_MODE_READ_WRITE: AttachMode
ATTACH_MODE_READ_ONLY: AttachMode

class QosLimits(_message.Message):
    __slots__ = ("max_iops", "max_read_bytes_per_second", "max_write_bytes_per_second")
    MAX_IOPS_FIELD_NUMBER: _ClassVar[int]
    MAX_READ_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    MAX_WRITE_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    max_iops: int
    max_read_bytes_per_second: int
    max_write_bytes_per_second: int
    def __init__(self, max_iops: _Optional[int] = ..., max_read_bytes_per_second: _Optional[int] = ..., max_write_bytes_per_second: _Optional[int] = ...) -> None: ...

class VolumeType(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "backend", "pool", "qos", "backup_pool", "create_time", "update_time", "etag")
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
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    QOS_FIELD_NUMBER: _ClassVar[int]
    BACKUP_POOL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    backend: Backend
    pool: str
    qos: QosLimits
    backup_pool: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., backend: _Optional[_Union[Backend, str]] = ..., pool: _Optional[str] = ..., qos: _Optional[_Union[QosLimits, _Mapping]] = ..., backup_pool: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("instance", "mode", "serial", "attach_time", "delete_with_instance", "device")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    ATTACH_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETE_WITH_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    instance: str
    mode: AttachMode
    serial: str
    attach_time: _timestamp_pb2.Timestamp
    delete_with_instance: bool
    device: str
    def __init__(self, instance: _Optional[str] = ..., mode: _Optional[_Union[AttachMode, str]] = ..., serial: _Optional[str] = ..., attach_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delete_with_instance: _Optional[bool] = ..., device: _Optional[str] = ...) -> None: ...

class Volume(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "volume_type", "size_gib", "source_image", "source_snapshot", "source_volume", "source_backup", "bootable", "multi_attach", "state", "state_message", "attachments", "create_time", "update_time", "etag")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Volume.State]
        STATE_CREATING: _ClassVar[Volume.State]
        STATE_AVAILABLE: _ClassVar[Volume.State]
        STATE_IN_USE: _ClassVar[Volume.State]
        STATE_UPDATING: _ClassVar[Volume.State]
        STATE_DELETING: _ClassVar[Volume.State]
        STATE_ERROR: _ClassVar[Volume.State]
    STATE_UNSPECIFIED: Volume.State
    STATE_CREATING: Volume.State
    STATE_AVAILABLE: Volume.State
    STATE_IN_USE: Volume.State
    STATE_UPDATING: Volume.State
    STATE_DELETING: Volume.State
    STATE_ERROR: Volume.State
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
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BACKUP_FIELD_NUMBER: _ClassVar[int]
    BOOTABLE_FIELD_NUMBER: _ClassVar[int]
    MULTI_ATTACH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    volume_type: str
    size_gib: int
    source_image: str
    source_snapshot: str
    source_volume: str
    source_backup: str
    bootable: bool
    multi_attach: bool
    state: Volume.State
    state_message: str
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., volume_type: _Optional[str] = ..., size_gib: _Optional[int] = ..., source_image: _Optional[str] = ..., source_snapshot: _Optional[str] = ..., source_volume: _Optional[str] = ..., source_backup: _Optional[str] = ..., bootable: _Optional[bool] = ..., multi_attach: _Optional[bool] = ..., state: _Optional[_Union[Volume.State, str]] = ..., state_message: _Optional[str] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "size_gib", "state", "state_message", "create_time", "update_time", "etag")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Snapshot.State]
        STATE_CREATING: _ClassVar[Snapshot.State]
        STATE_AVAILABLE: _ClassVar[Snapshot.State]
        STATE_DELETING: _ClassVar[Snapshot.State]
        STATE_ERROR: _ClassVar[Snapshot.State]
    STATE_UNSPECIFIED: Snapshot.State
    STATE_CREATING: Snapshot.State
    STATE_AVAILABLE: Snapshot.State
    STATE_DELETING: Snapshot.State
    STATE_ERROR: Snapshot.State
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
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    size_gib: int
    state: Snapshot.State
    state_message: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., size_gib: _Optional[int] = ..., state: _Optional[_Union[Snapshot.State, str]] = ..., state_message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Backup(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "source_volume", "parent_backup", "size_gib", "state", "state_message", "create_time", "update_time", "etag")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Backup.State]
        STATE_CREATING: _ClassVar[Backup.State]
        STATE_AVAILABLE: _ClassVar[Backup.State]
        STATE_DELETING: _ClassVar[Backup.State]
        STATE_ERROR: _ClassVar[Backup.State]
    STATE_UNSPECIFIED: Backup.State
    STATE_CREATING: Backup.State
    STATE_AVAILABLE: Backup.State
    STATE_DELETING: Backup.State
    STATE_ERROR: Backup.State
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
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VOLUME_FIELD_NUMBER: _ClassVar[int]
    PARENT_BACKUP_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    source_volume: str
    parent_backup: str
    size_gib: int
    state: Backup.State
    state_message: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., source_volume: _Optional[str] = ..., parent_backup: _Optional[str] = ..., size_gib: _Optional[int] = ..., state: _Optional[_Union[Backup.State, str]] = ..., state_message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class VolumeTransfer(_message.Message):
    __slots__ = ("name", "uid", "volume", "auth_key", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    AUTH_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    volume: str
    auth_key: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., volume: _Optional[str] = ..., auth_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
