from google.api import annotations_pb2 as _annotations_pb2
from google.api import client_pb2 as _client_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from kumo.storage.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateVolumeTypeRequest(_message.Message):
    __slots__ = ("volume_type", "volume_type_id", "request_id")
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    volume_type: _resources_pb2.VolumeType
    volume_type_id: str
    request_id: str
    def __init__(self, volume_type: _Optional[_Union[_resources_pb2.VolumeType, _Mapping]] = ..., volume_type_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetVolumeTypeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVolumeTypesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListVolumeTypesResponse(_message.Message):
    __slots__ = ("volume_types", "next_page_token")
    VOLUME_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    volume_types: _containers.RepeatedCompositeFieldContainer[_resources_pb2.VolumeType]
    next_page_token: str
    def __init__(self, volume_types: _Optional[_Iterable[_Union[_resources_pb2.VolumeType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateVolumeTypeRequest(_message.Message):
    __slots__ = ("volume_type", "update_mask", "request_id")
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    volume_type: _resources_pb2.VolumeType
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, volume_type: _Optional[_Union[_resources_pb2.VolumeType, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteVolumeTypeRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateVolumeRequest(_message.Message):
    __slots__ = ("parent", "volume", "volume_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    VOLUME_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    volume: _resources_pb2.Volume
    volume_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., volume: _Optional[_Union[_resources_pb2.Volume, _Mapping]] = ..., volume_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetVolumeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVolumesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter", "order_by")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListVolumesResponse(_message.Message):
    __slots__ = ("volumes", "next_page_token")
    VOLUMES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    volumes: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Volume]
    next_page_token: str
    def __init__(self, volumes: _Optional[_Iterable[_Union[_resources_pb2.Volume, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateVolumeRequest(_message.Message):
    __slots__ = ("volume", "update_mask", "request_id")
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    volume: _resources_pb2.Volume
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, volume: _Optional[_Union[_resources_pb2.Volume, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteVolumeRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ExtendVolumeRequest(_message.Message):
    __slots__ = ("name", "size_gib", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_GIB_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    size_gib: int
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., size_gib: _Optional[int] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RetypeVolumeRequest(_message.Message):
    __slots__ = ("name", "volume_type", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TYPE_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    volume_type: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., volume_type: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AttachVolumeRequest(_message.Message):
    __slots__ = ("name", "instance", "mode", "request_id", "device", "delete_with_instance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DELETE_WITH_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    instance: str
    mode: _resources_pb2.AttachMode
    request_id: str
    device: str
    delete_with_instance: bool
    def __init__(self, name: _Optional[str] = ..., instance: _Optional[str] = ..., mode: _Optional[_Union[_resources_pb2.AttachMode, str]] = ..., request_id: _Optional[str] = ..., device: _Optional[str] = ..., delete_with_instance: _Optional[bool] = ...) -> None: ...

class UpdateAttachmentRequest(_message.Message):
    __slots__ = ("name", "instance", "delete_with_instance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    DELETE_WITH_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    instance: str
    delete_with_instance: bool
    def __init__(self, name: _Optional[str] = ..., instance: _Optional[str] = ..., delete_with_instance: _Optional[bool] = ...) -> None: ...

class DetachVolumeRequest(_message.Message):
    __slots__ = ("name", "instance", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    instance: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., instance: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateSnapshotRequest(_message.Message):
    __slots__ = ("parent", "snapshot", "snapshot_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    snapshot: _resources_pb2.Snapshot
    snapshot_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., snapshot: _Optional[_Union[_resources_pb2.Snapshot, _Mapping]] = ..., snapshot_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots", "next_page_token")
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Snapshot]
    next_page_token: str
    def __init__(self, snapshots: _Optional[_Iterable[_Union[_resources_pb2.Snapshot, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSnapshotRequest(_message.Message):
    __slots__ = ("snapshot", "update_mask", "request_id")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    snapshot: _resources_pb2.Snapshot
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, snapshot: _Optional[_Union[_resources_pb2.Snapshot, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteSnapshotRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateBackupRequest(_message.Message):
    __slots__ = ("parent", "backup", "backup_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BACKUP_FIELD_NUMBER: _ClassVar[int]
    BACKUP_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    backup: _resources_pb2.Backup
    backup_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., backup: _Optional[_Union[_resources_pb2.Backup, _Mapping]] = ..., backup_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetBackupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListBackupsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBackupsResponse(_message.Message):
    __slots__ = ("backups", "next_page_token")
    BACKUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    backups: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Backup]
    next_page_token: str
    def __init__(self, backups: _Optional[_Iterable[_Union[_resources_pb2.Backup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteBackupRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateVolumeTransferRequest(_message.Message):
    __slots__ = ("parent", "volume_transfer", "volume_transfer_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    VOLUME_TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    volume_transfer: _resources_pb2.VolumeTransfer
    volume_transfer_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., volume_transfer: _Optional[_Union[_resources_pb2.VolumeTransfer, _Mapping]] = ..., volume_transfer_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetVolumeTransferRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListVolumeTransfersRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVolumeTransfersResponse(_message.Message):
    __slots__ = ("volume_transfers", "next_page_token")
    VOLUME_TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    volume_transfers: _containers.RepeatedCompositeFieldContainer[_resources_pb2.VolumeTransfer]
    next_page_token: str
    def __init__(self, volume_transfers: _Optional[_Iterable[_Union[_resources_pb2.VolumeTransfer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteVolumeTransferRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AcceptVolumeTransferRequest(_message.Message):
    __slots__ = ("name", "auth_key", "destination_project", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_KEY_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PROJECT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    auth_key: str
    destination_project: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., auth_key: _Optional[str] = ..., destination_project: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...
