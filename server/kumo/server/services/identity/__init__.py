"""IdentityService: sign-in, projects, users, role assignments, access keys, quotas.

The servicer is assembled from one part per concern; each part's module says
what its methods check and raise.
"""

from __future__ import annotations

from kumo.identity.v1 import identity_service_pb2_grpc as rpc
from kumo.server.runtime import Runtime
from kumo.server.services.identity.access_keys import AccessKeyMethods
from kumo.server.services.identity.projects import ProjectMethods
from kumo.server.services.identity.quotas import QuotaMethods
from kumo.server.services.identity.roles import RoleMethods
from kumo.server.services.identity.signatures import SignatureMethods
from kumo.server.services.identity.tokens import TokenMethods
from kumo.server.services.identity.users import UserMethods


class IdentityService(
    SignatureMethods,  # extends TokenMethods
    TokenMethods,
    ProjectMethods,
    UserMethods,
    RoleMethods,
    AccessKeyMethods,
    QuotaMethods,
    rpc.IdentityServiceServicer,
):
    """The identity servicer."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.register_handlers()
