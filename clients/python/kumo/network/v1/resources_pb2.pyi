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

class SyncState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SYNC_STATE_UNSPECIFIED: _ClassVar[SyncState]
    SYNC_STATE_PROVISIONING: _ClassVar[SyncState]
    SYNC_STATE_ACTIVE: _ClassVar[SyncState]
    SYNC_STATE_ERROR: _ClassVar[SyncState]
SYNC_STATE_UNSPECIFIED: SyncState
SYNC_STATE_PROVISIONING: SyncState
SYNC_STATE_ACTIVE: SyncState
SYNC_STATE_ERROR: SyncState

class Network(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "type", "physical_network", "vlan_id", "external", "mtu", "state", "state_message", "create_time", "update_time", "etag", "shared")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Network.Type]
        TYPE_OVERLAY: _ClassVar[Network.Type]
        TYPE_VLAN: _ClassVar[Network.Type]
        TYPE_FLAT: _ClassVar[Network.Type]
    TYPE_UNSPECIFIED: Network.Type
    TYPE_OVERLAY: Network.Type
    TYPE_VLAN: Network.Type
    TYPE_FLAT: Network.Type
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
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_NETWORK_FIELD_NUMBER: _ClassVar[int]
    VLAN_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    type: Network.Type
    physical_network: str
    vlan_id: int
    external: bool
    mtu: int
    state: SyncState
    state_message: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    shared: bool
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., type: _Optional[_Union[Network.Type, str]] = ..., physical_network: _Optional[str] = ..., vlan_id: _Optional[int] = ..., external: _Optional[bool] = ..., mtu: _Optional[int] = ..., state: _Optional[_Union[SyncState, str]] = ..., state_message: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., shared: _Optional[bool] = ...) -> None: ...

class AllocationPool(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("destination", "next_hop")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    destination: str
    next_hop: str
    def __init__(self, destination: _Optional[str] = ..., next_hop: _Optional[str] = ...) -> None: ...

class Subnet(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "cidr", "ip_version", "gateway_ip", "allocation_pools", "dns_servers", "dhcp_enabled", "host_routes", "state", "create_time", "update_time", "etag")
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
    CIDR_FIELD_NUMBER: _ClassVar[int]
    IP_VERSION_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_IP_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_POOLS_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVERS_FIELD_NUMBER: _ClassVar[int]
    DHCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    HOST_ROUTES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    cidr: str
    ip_version: int
    gateway_ip: str
    allocation_pools: _containers.RepeatedCompositeFieldContainer[AllocationPool]
    dns_servers: _containers.RepeatedScalarFieldContainer[str]
    dhcp_enabled: bool
    host_routes: _containers.RepeatedCompositeFieldContainer[Route]
    state: SyncState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., cidr: _Optional[str] = ..., ip_version: _Optional[int] = ..., gateway_ip: _Optional[str] = ..., allocation_pools: _Optional[_Iterable[_Union[AllocationPool, _Mapping]]] = ..., dns_servers: _Optional[_Iterable[str]] = ..., dhcp_enabled: _Optional[bool] = ..., host_routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., state: _Optional[_Union[SyncState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class FixedIp(_message.Message):
    __slots__ = ("subnet", "ip_address")
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    subnet: str
    ip_address: str
    def __init__(self, subnet: _Optional[str] = ..., ip_address: _Optional[str] = ...) -> None: ...

class AllowedAddressPair(_message.Message):
    __slots__ = ("ip_address", "mac_address")
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ip_address: str
    mac_address: str
    def __init__(self, ip_address: _Optional[str] = ..., mac_address: _Optional[str] = ...) -> None: ...

class Port(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "network", "mac_address", "fixed_ips", "security_groups", "port_security_enabled", "allowed_address_pairs", "device_owner", "device_id", "host", "status", "state", "create_time", "update_time", "etag", "device_uid")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Port.Status]
        STATUS_DOWN: _ClassVar[Port.Status]
        STATUS_ACTIVE: _ClassVar[Port.Status]
    STATUS_UNSPECIFIED: Port.Status
    STATUS_DOWN: Port.Status
    STATUS_ACTIVE: Port.Status
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
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FIXED_IPS_FIELD_NUMBER: _ClassVar[int]
    SECURITY_GROUPS_FIELD_NUMBER: _ClassVar[int]
    PORT_SECURITY_ENABLED_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ADDRESS_PAIRS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_OWNER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    DEVICE_UID_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    network: str
    mac_address: str
    fixed_ips: _containers.RepeatedCompositeFieldContainer[FixedIp]
    security_groups: _containers.RepeatedScalarFieldContainer[str]
    port_security_enabled: bool
    allowed_address_pairs: _containers.RepeatedCompositeFieldContainer[AllowedAddressPair]
    device_owner: str
    device_id: str
    host: str
    status: Port.Status
    state: SyncState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    device_uid: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., network: _Optional[str] = ..., mac_address: _Optional[str] = ..., fixed_ips: _Optional[_Iterable[_Union[FixedIp, _Mapping]]] = ..., security_groups: _Optional[_Iterable[str]] = ..., port_security_enabled: _Optional[bool] = ..., allowed_address_pairs: _Optional[_Iterable[_Union[AllowedAddressPair, _Mapping]]] = ..., device_owner: _Optional[str] = ..., device_id: _Optional[str] = ..., host: _Optional[str] = ..., status: _Optional[_Union[Port.Status, str]] = ..., state: _Optional[_Union[SyncState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., device_uid: _Optional[str] = ...) -> None: ...

class ExternalGateway(_message.Message):
    __slots__ = ("network", "snat_enabled", "ip_address")
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    SNAT_ENABLED_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    network: str
    snat_enabled: bool
    ip_address: str
    def __init__(self, network: _Optional[str] = ..., snat_enabled: _Optional[bool] = ..., ip_address: _Optional[str] = ...) -> None: ...

class RouterInterface(_message.Message):
    __slots__ = ("subnet", "port")
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    subnet: str
    port: str
    def __init__(self, subnet: _Optional[str] = ..., port: _Optional[str] = ...) -> None: ...

class Router(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "external_gateway", "routes", "interfaces", "state", "create_time", "update_time", "etag")
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
    EXTERNAL_GATEWAY_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    external_gateway: ExternalGateway
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    interfaces: _containers.RepeatedCompositeFieldContainer[RouterInterface]
    state: SyncState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., external_gateway: _Optional[_Union[ExternalGateway, _Mapping]] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., interfaces: _Optional[_Iterable[_Union[RouterInterface, _Mapping]]] = ..., state: _Optional[_Union[SyncState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class FloatingIp(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "network", "ip_address", "port", "fixed_ip", "router", "state", "create_time", "update_time", "etag")
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
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    FIXED_IP_FIELD_NUMBER: _ClassVar[int]
    ROUTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    network: str
    ip_address: str
    port: str
    fixed_ip: str
    router: str
    state: SyncState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., network: _Optional[str] = ..., ip_address: _Optional[str] = ..., port: _Optional[str] = ..., fixed_ip: _Optional[str] = ..., router: _Optional[str] = ..., state: _Optional[_Union[SyncState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class SecurityGroupRule(_message.Message):
    __slots__ = ("id", "direction", "ip_version", "protocol", "port_range_min", "port_range_max", "remote_cidr", "remote_group")
    class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DIRECTION_UNSPECIFIED: _ClassVar[SecurityGroupRule.Direction]
        DIRECTION_INGRESS: _ClassVar[SecurityGroupRule.Direction]
        DIRECTION_EGRESS: _ClassVar[SecurityGroupRule.Direction]
    DIRECTION_UNSPECIFIED: SecurityGroupRule.Direction
    DIRECTION_INGRESS: SecurityGroupRule.Direction
    DIRECTION_EGRESS: SecurityGroupRule.Direction
    ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    IP_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_RANGE_MIN_FIELD_NUMBER: _ClassVar[int]
    PORT_RANGE_MAX_FIELD_NUMBER: _ClassVar[int]
    REMOTE_CIDR_FIELD_NUMBER: _ClassVar[int]
    REMOTE_GROUP_FIELD_NUMBER: _ClassVar[int]
    id: str
    direction: SecurityGroupRule.Direction
    ip_version: int
    protocol: str
    port_range_min: int
    port_range_max: int
    remote_cidr: str
    remote_group: str
    def __init__(self, id: _Optional[str] = ..., direction: _Optional[_Union[SecurityGroupRule.Direction, str]] = ..., ip_version: _Optional[int] = ..., protocol: _Optional[str] = ..., port_range_min: _Optional[int] = ..., port_range_max: _Optional[int] = ..., remote_cidr: _Optional[str] = ..., remote_group: _Optional[str] = ...) -> None: ...

class SecurityGroup(_message.Message):
    __slots__ = ("name", "uid", "display_name", "description", "labels", "rules", "state", "create_time", "update_time", "etag")
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
    RULES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    description: str
    labels: _containers.ScalarMap[str, str]
    rules: _containers.RepeatedCompositeFieldContainer[SecurityGroupRule]
    state: SyncState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., rules: _Optional[_Iterable[_Union[SecurityGroupRule, _Mapping]]] = ..., state: _Optional[_Union[SyncState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...
