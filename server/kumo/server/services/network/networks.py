"""CreateNetwork, GetNetwork, ListNetworks, UpdateNetwork, DeleteNetwork.

Tenants make OVERLAY networks; VLAN and FLAT provider networks, external networks
and shared ones (every project may read them and put ports on them) are for cloud
administrators (PERMISSION_DENIED otherwise). A network
with ports, router gateways or floating IPs on it cannot be deleted
(FAILED_PRECONDITION); its subnets go with it.
"""

from __future__ import annotations

from google.protobuf import empty_pb2
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session

from kumo.network.v1 import network_service_pb2 as api
from kumo.network.v1 import resources_pb2 as pb
from kumo.server.api.convert import check_etag
from kumo.server.api.fields import update_paths
from kumo.server.api.idempotency import idempotent
from kumo.server.api.resources import apply_common
from kumo.server.auth.principal import Principal, current_principal
from kumo.server.db.models import FloatingIpRow, NetworkRow, PortRow, RouterRow, SubnetRow
from kumo.server.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from kumo.server.interceptors.base import Context
from kumo.server.quota import charge
from kumo.server.services.identity.common import PROJECTS, require_active
from kumo.server.services.network.common import (
    NETWORKS,
    NetworkPart,
    bump,
    network_to_proto,
    own_project,
    owned,
    readable_network,
)

MIN_MTU = 576
MAX_MTU = 9000


def _check_spec(caller: Principal, network: pb.Network) -> None:
    kind = network.type or pb.Network.TYPE_OVERLAY
    provider = kind in (pb.Network.TYPE_VLAN, pb.Network.TYPE_FLAT)
    if (provider or network.external or network.shared) and not caller.cloud_admin:
        raise PermissionDenied(
            "provider, external and shared networks are for cloud administrators"
        )
    violations = []
    if kind not in pb.Network.Type.values():
        violations.append(FieldViolation("network.type", "unknown type"))
    if provider and not network.physical_network:
        violations.append(FieldViolation("network.physical_network", "required for VLAN and FLAT"))
    if not provider and (network.physical_network or network.vlan_id):
        violations.append(
            FieldViolation("network.physical_network", "only VLAN and FLAT networks have one")
        )
    if kind == pb.Network.TYPE_VLAN and not 1 <= network.vlan_id <= 4094:
        violations.append(FieldViolation("network.vlan_id", "must be 1-4094"))
    if kind != pb.Network.TYPE_VLAN and network.vlan_id:
        violations.append(FieldViolation("network.vlan_id", "only VLAN networks have one"))
    _check_mtu(network.mtu, violations)
    if violations:
        raise InvalidArgument(violations)


def _check_mtu(mtu: int, violations: list[FieldViolation]) -> None:
    if mtu and not MIN_MTU <= mtu <= MAX_MTU:
        violations.append(FieldViolation("network.mtu", f"0 or {MIN_MTU}-{MAX_MTU}"))


def network_in_use(session: Session, row: NetworkRow) -> str | None:
    """What keeps a network from being deleted, or None."""
    key = (row.project_id, row.id)
    checks = [
        ("ports", PortRow, (PortRow.network_project_id, PortRow.network_id)),
        (
            "router gateways",
            RouterRow,
            (RouterRow.gateway_network_project_id, RouterRow.gateway_network_id),
        ),
        (
            "floating IPs",
            FloatingIpRow,
            (FloatingIpRow.network_project_id, FloatingIpRow.network_id),
        ),
    ]
    for what, _table, (project_column, id_column) in checks:
        if session.scalar(select(exists().where(project_column == key[0], id_column == key[1]))):
            return what
    return None


def _set_shared(session: Session, row: NetworkRow, shared: bool, name: str) -> None:
    """Shares or unshares the network; FailedPrecondition (NETWORK_IN_USE) unsharing one
    that other projects have ports on (as Neutron answers 409)."""
    if row.shared and not shared:
        foreign = exists().where(
            PortRow.network_project_id == row.project_id,
            PortRow.network_id == row.id,
            PortRow.project_id != row.project_id,
        )
        if session.scalar(select(foreign)):
            raise FailedPrecondition(
                f"{name} has ports of other projects: it must stay shared",
                type="NETWORK_IN_USE",
                subject=name,
            )
    row.shared = shared


class NetworkMethods(NetworkPart):
    """Networks: the layer-2 segments of a project."""

    async def CreateNetwork(
        self, request: api.CreateNetworkRequest, context: Context
    ) -> pb.Network:
        caller = current_principal()
        project_id = own_project(caller, request.parent)
        _check_spec(caller, request.network)

        def create(session: Session) -> pb.Network:
            require_active(PROJECTS.get(session, request.parent, "parent"))
            charge(session, project_id, {"networks": 1})
            spec = request.network
            row = NetworkRow(
                project_id=project_id,
                type=spec.type or pb.Network.TYPE_OVERLAY,
                physical_network=spec.physical_network,
                vlan_id=spec.vlan_id,
                external=spec.external,
                shared=spec.shared,
                mtu=spec.mtu,
            )
            apply_common(row, spec, {"display_name", "description", "labels"}, "network")
            NETWORKS.insert(session, request.network_id, "network_id", row)
            session.flush()
            return network_to_proto(row)

        result = await idempotent(self.runtime.db, "CreateNetwork", request, pb.Network, create)
        self.changed()
        return result

    async def GetNetwork(self, request: api.GetNetworkRequest, context: Context) -> pb.Network:
        caller = current_principal()
        return await self.runtime.db.run(
            lambda s: network_to_proto(readable_network(s, caller, request.name))
        )

    async def ListNetworks(
        self, request: api.ListNetworksRequest, context: Context
    ) -> api.ListNetworksResponse:
        caller = current_principal()
        if request.parent == "projects/-":  # own networks and every external or shared one
            where = (
                []
                if caller.cloud_admin
                else [
                    or_(
                        NetworkRow.project_id == caller.project_id,
                        NetworkRow.external,
                        NetworkRow.shared,
                    )
                ]
            )
        else:
            where = [NetworkRow.project_id == own_project(caller, request.parent)]

        def page(session: Session) -> api.ListNetworksResponse:
            result = NETWORKS.list(
                session, self.runtime.pager, request, where, binding=request.parent
            )
            return api.ListNetworksResponse(
                networks=[network_to_proto(r) for r in result.rows],
                next_page_token=result.next_page_token,
            )

        return await self.runtime.db.run(page)

    async def UpdateNetwork(
        self, request: api.UpdateNetworkRequest, context: Context
    ) -> pb.Network:
        caller = current_principal()
        paths = update_paths(request.network, request.update_mask, "network")
        violations: list[FieldViolation] = []
        if "mtu" in paths:
            _check_mtu(request.network.mtu, violations)
        if violations:
            raise InvalidArgument(violations)
        if "shared" in paths and not caller.cloud_admin:
            raise PermissionDenied("shared networks are for cloud administrators")

        def update(session: Session) -> pb.Network:
            row = owned(session, caller, NETWORKS, request.network.name, "network.name")
            check_etag(request.network.etag, row.version, request.network.name)
            apply_common(row, request.network, paths, "network")
            if "mtu" in paths:
                row.mtu = request.network.mtu
            if "shared" in paths:
                _set_shared(session, row, request.network.shared, request.network.name)
            bump(row)
            session.flush()
            return network_to_proto(row)

        result = await idempotent(self.runtime.db, "UpdateNetwork", request, pb.Network, update)
        self.changed()
        return result

    async def DeleteNetwork(
        self, request: api.DeleteNetworkRequest, context: Context
    ) -> empty_pb2.Empty:
        caller = current_principal()

        def remove(session: Session) -> empty_pb2.Empty:
            row = owned(session, caller, NETWORKS, request.name)
            check_etag(request.etag, row.version, request.name)
            if (what := network_in_use(session, row)) is not None:
                raise FailedPrecondition(
                    f"{request.name} still has {what}", type="NETWORK_IN_USE", subject=request.name
                )
            subnets = session.execute(
                delete(SubnetRow).where(
                    SubnetRow.project_id == row.project_id, SubnetRow.network_id == row.id
                )
            ).rowcount  # type: ignore[attr-defined]
            charge(session, row.project_id, {"networks": -1, "subnets": -subnets})
            session.delete(row)
            return empty_pb2.Empty()

        result = await idempotent(
            self.runtime.db, "DeleteNetwork", request, empty_pb2.Empty, remove
        )
        self.changed()
        return result
