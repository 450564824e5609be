"""Who is calling: the principal of the current request, kept in a context variable."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from kumo.identity.v1 import resources_pb2
from kumo.server.errors import NotFound, Unauthenticated

READER = resources_pb2.ROLE_READER
MEMBER = resources_pb2.ROLE_MEMBER
ADMIN = resources_pb2.ROLE_ADMIN


@dataclass(frozen=True)
class Principal:
    """A validated token: the user, the project it is scoped to and the role held there.

    `role` is the highest role the user holds on the project now (roles are
    ordered). `cloud_admin` is ADMIN on the bootstrap project.
    """

    user_id: str
    project_id: str
    role: int
    cloud_admin: bool
    token_id: str
    issue_time: datetime
    expire_time: datetime

    def can_see_project(self, project_id: str) -> bool:
        """Whether the caller may read resources of `project_id`."""
        return self.cloud_admin or project_id == self.project_id

    def require_project(self, project_id: str, resource_type: str, name: str) -> None:
        """Raises NotFound (not PermissionDenied, to hide existence) unless the caller
        may read resources of `project_id`."""
        if not self.can_see_project(project_id):
            raise NotFound(resource_type, name)


_current: ContextVar[Principal | None] = ContextVar("kumo_principal", default=None)


def current_principal() -> Principal:
    """The principal of the request being served; Unauthenticated if the call had none."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("this call needs a token")
    return principal


def optional_principal() -> Principal | None:
    """The principal of the request being served, or None for an anonymous call."""
    return _current.get()


def set_principal(principal: Principal | None) -> None:
    """Sets the principal for the rest of the current request (used by the auth interceptor)."""
    _current.set(principal)
