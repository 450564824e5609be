from google.api import annotations_pb2 as _annotations_pb2
from google.api import client_pb2 as _client_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from kumo.compute.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RebootType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REBOOT_TYPE_UNSPECIFIED: _ClassVar[RebootType]
    REBOOT_TYPE_SOFT: _ClassVar[RebootType]
    REBOOT_TYPE_HARD: _ClassVar[RebootType]
REBOOT_TYPE_UNSPECIFIED: RebootType
REBOOT_TYPE_SOFT: RebootType
REBOOT_TYPE_HARD: RebootType

class CreateFlavorRequest(_message.Message):
    __slots__ = ("flavor", "flavor_id", "request_id")
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flavor: _resources_pb2.Flavor
    flavor_id: str
    request_id: str
    def __init__(self, flavor: _Optional[_Union[_resources_pb2.Flavor, _Mapping]] = ..., flavor_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetFlavorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListFlavorsRequest(_message.Message):
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

class ListFlavorsResponse(_message.Message):
    __slots__ = ("flavors", "next_page_token")
    FLAVORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    flavors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Flavor]
    next_page_token: str
    def __init__(self, flavors: _Optional[_Iterable[_Union[_resources_pb2.Flavor, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateFlavorRequest(_message.Message):
    __slots__ = ("flavor", "update_mask", "request_id")
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    flavor: _resources_pb2.Flavor
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, flavor: _Optional[_Union[_resources_pb2.Flavor, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteFlavorRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateKeyPairRequest(_message.Message):
    __slots__ = ("parent", "key_pair", "key_pair_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    KEY_PAIR_FIELD_NUMBER: _ClassVar[int]
    KEY_PAIR_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    key_pair: _resources_pb2.KeyPair
    key_pair_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., key_pair: _Optional[_Union[_resources_pb2.KeyPair, _Mapping]] = ..., key_pair_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateKeyPairRequest(_message.Message):
    __slots__ = ("key_pair", "update_mask", "request_id")
    KEY_PAIR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key_pair: _resources_pb2.KeyPair
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, key_pair: _Optional[_Union[_resources_pb2.KeyPair, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetKeyPairRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListKeyPairsRequest(_message.Message):
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

class ListKeyPairsResponse(_message.Message):
    __slots__ = ("key_pairs", "next_page_token")
    KEY_PAIRS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    key_pairs: _containers.RepeatedCompositeFieldContainer[_resources_pb2.KeyPair]
    next_page_token: str
    def __init__(self, key_pairs: _Optional[_Iterable[_Union[_resources_pb2.KeyPair, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteKeyPairRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateServerGroupRequest(_message.Message):
    __slots__ = ("parent", "server_group", "server_group_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    SERVER_GROUP_FIELD_NUMBER: _ClassVar[int]
    SERVER_GROUP_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    server_group: _resources_pb2.ServerGroup
    server_group_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., server_group: _Optional[_Union[_resources_pb2.ServerGroup, _Mapping]] = ..., server_group_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetServerGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListServerGroupsRequest(_message.Message):
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

class ListServerGroupsResponse(_message.Message):
    __slots__ = ("server_groups", "next_page_token")
    SERVER_GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    server_groups: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ServerGroup]
    next_page_token: str
    def __init__(self, server_groups: _Optional[_Iterable[_Union[_resources_pb2.ServerGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteServerGroupRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateInstanceRequest(_message.Message):
    __slots__ = ("parent", "instance", "instance_id", "request_id")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    parent: str
    instance: _resources_pb2.Instance
    instance_id: str
    request_id: str
    def __init__(self, parent: _Optional[str] = ..., instance: _Optional[_Union[_resources_pb2.Instance, _Mapping]] = ..., instance_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetInstanceRequest(_message.Message):
    __slots__ = ("name", "show_deleted")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    name: str
    show_deleted: bool
    def __init__(self, name: _Optional[str] = ..., show_deleted: _Optional[bool] = ...) -> None: ...

class ListInstancesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "filter", "order_by", "show_deleted")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    SHOW_DELETED_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    filter: str
    order_by: str
    show_deleted: bool
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ..., show_deleted: _Optional[bool] = ...) -> None: ...

class ListInstancesResponse(_message.Message):
    __slots__ = ("instances", "next_page_token")
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    instances: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Instance]
    next_page_token: str
    def __init__(self, instances: _Optional[_Iterable[_Union[_resources_pb2.Instance, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateInstanceRequest(_message.Message):
    __slots__ = ("instance", "update_mask", "request_id")
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    instance: _resources_pb2.Instance
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, instance: _Optional[_Union[_resources_pb2.Instance, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteInstanceRequest(_message.Message):
    __slots__ = ("name", "etag", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartInstanceRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StopInstanceRequest(_message.Message):
    __slots__ = ("name", "timeout_seconds", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    timeout_seconds: int
    request_id: str
    def __init__(self, name: _Optional[str] = ..., timeout_seconds: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class RebootInstanceRequest(_message.Message):
    __slots__ = ("name", "type", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: RebootType
    request_id: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[RebootType, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class SuspendInstanceRequest(_message.Message):
    __slots__ = ("name", "request_id", "pause")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSE_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    pause: bool
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ..., pause: _Optional[bool] = ...) -> None: ...

class ResumeInstanceRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ResizeInstanceRequest(_message.Message):
    __slots__ = ("name", "flavor", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLAVOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    flavor: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., flavor: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AttachNetworkInterfaceRequest(_message.Message):
    __slots__ = ("name", "network_interface", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    network_interface: _resources_pb2.NetworkInterface
    request_id: str
    def __init__(self, name: _Optional[str] = ..., network_interface: _Optional[_Union[_resources_pb2.NetworkInterface, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DetachNetworkInterfaceRequest(_message.Message):
    __slots__ = ("name", "port", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    port: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., port: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ConfirmResizeInstanceRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RevertResizeInstanceRequest(_message.Message):
    __slots__ = ("name", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RebuildInstanceRequest(_message.Message):
    __slots__ = ("name", "image", "request_id", "instance", "update_mask")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    image: str
    request_id: str
    instance: _resources_pb2.Instance
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, name: _Optional[str] = ..., image: _Optional[str] = ..., request_id: _Optional[str] = ..., instance: _Optional[_Union[_resources_pb2.Instance, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class SnapshotInstanceRequest(_message.Message):
    __slots__ = ("name", "image_id", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    image_id: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., image_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class MigrateInstanceRequest(_message.Message):
    __slots__ = ("name", "host", "options", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    options: _resources_pb2.MigrationOptions
    request_id: str
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., options: _Optional[_Union[_resources_pb2.MigrationOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class EvacuateInstanceRequest(_message.Message):
    __slots__ = ("name", "host", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    host: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., host: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetSerialPortOutputRequest(_message.Message):
    __slots__ = ("name", "start")
    NAME_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    name: str
    start: int
    def __init__(self, name: _Optional[str] = ..., start: _Optional[int] = ...) -> None: ...

class GetSerialPortOutputResponse(_message.Message):
    __slots__ = ("contents", "start", "next")
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    contents: str
    start: int
    next: int
    def __init__(self, contents: _Optional[str] = ..., start: _Optional[int] = ..., next: _Optional[int] = ...) -> None: ...
